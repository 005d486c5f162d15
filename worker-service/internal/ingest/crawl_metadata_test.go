package ingest_test

import (
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
)

func TestCrawlPagesInheritTheCrawlsMetadata(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := site(t, &h)
	crawl := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 3, MaxDepth: 1,
		Metadata: `{"source":"club","tags":["sailing"]}`})
	e.wait(t, crawl.TaskID, 30*time.Second, "every page done or failed", func(st *job.Status) bool {
		return st.Crawl != nil && st.Crawl.Queued == 3 && st.Crawl.Done+st.Crawl.Failed == 3
	})
	got := pages(t, e, "7")
	if len(got) != 3 {
		t.Fatalf("%d pages stored, want 3", len(got))
	}
	for u, d := range got {
		if string(d.Metadata) != `{"tags": ["sailing"], "source": "club"}` {
			t.Errorf("page %s metadata = %s, want the crawl's", u, d.Metadata)
		}
	}
}
