package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

// batchItems are 20 files: 18 text notes and 2 PDFs that are corrupt past their header.
func batchItems() map[string][]byte {
	items := map[string][]byte{}
	for i := range 18 {
		items[fmt.Sprintf("note-%02d.txt", i)] = []byte(fmt.Sprintf("Note %d: the cooling pump must be inspected every week.\n", i))
	}
	for i := range 2 {
		items[fmt.Sprintf("broken-%d.pdf", i)] = append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("\x00garbage"), 64)...)
	}
	return items
}

func (c *client) postMultipart(path string, write func(mw *multipart.Writer)) (int, map[string]any) {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	write(mw)
	_ = mw.Close()
	return c.do(http.MethodPost, path, &body, mw.FormDataContentType())
}

// waitBatch follows the batch's event stream until it ends and returns the last status.
func (c *client) waitBatch(id string, within time.Duration) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/batches/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var last map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = nil
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				c.t.Fatalf("batch event %q: %v", data, err)
			}
		}
	}
	if ctx.Err() != nil {
		c.t.Fatalf("batch %s: stream still open after %v; last status %v", id, within, last)
	}
	return last
}

func wantCounts(t *testing.T, st map[string]any, state string, success, failure float64) {
	t.Helper()
	counts, _ := st["counts"].(map[string]any)
	if st["state"] != state || st["total"] != 20.0 || counts["SUCCESS"] != success || counts["FAILURE"] != failure {
		t.Fatalf("batch = %v, want %s with %v succeeded and %v failed", st, state, success, failure)
	}
}

// A batch of 20 files, 2 of them corrupt, as separate parts and as one .zip: it ends PARTIAL
// with 18 succeeded and 2 failed, its stream ending there; its retry re-queues exactly the 2,
// which fail again.
func TestBatchOfTwentyFilesWithTwoCorruptEndsPartialAndRetriesTheTwo(t *testing.T) {
	slow(t)
	s := newStack(t, nil)
	api := s.startAPI(t)
	s.startWorker(t, nil)
	items := batchItems()
	variants := map[string]func(mw *multipart.Writer){
		"multipart": func(mw *multipart.Writer) {
			for name, content := range items {
				fw, _ := mw.CreateFormFile("file", name)
				_, _ = fw.Write(content)
			}
		},
		"zip": func(mw *multipart.Writer) {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			for name, content := range items {
				w, _ := zw.Create("export/" + name)
				_, _ = w.Write(content)
			}
			_ = zw.Close()
			fw, _ := mw.CreateFormFile("file", "export.zip")
			_, _ = fw.Write(buf.Bytes())
		},
	}
	for _, name := range []string{"multipart", "zip"} {
		t.Run(name, func(t *testing.T) {
			api.t = t
			code, up := api.postMultipart("/api/v1/documents/agent/7/batch", variants[name])
			if code != http.StatusAccepted {
				t.Fatalf("batch = %d %v", code, up)
			}
			if tasks, _ := up["tasks"].([]any); len(tasks) != 20 {
				t.Fatalf("batch accepted %d tasks, want 20: %v", len(tasks), up)
			}
			id := up["batch_id"].(string)
			wantCounts(t, api.waitBatch(id, 90*time.Second), "PARTIAL", 18, 2)

			code, st := api.do(http.MethodPost, "/api/v1/batches/"+id+"/retry", nil, "")
			if code != http.StatusAccepted || st["retried"] != 2.0 {
				t.Fatalf("retry = %d %v, want 2 re-queued", code, st)
			}
			if counts := st["counts"].(map[string]any); counts["SUCCESS"] != 18.0 {
				t.Fatalf("batch after the retry = %v, want the 18 kept", st)
			}
			wantCounts(t, api.waitBatch(id, 90*time.Second), "PARTIAL", 18, 2)
			// Only the two ran again: the notes ran once, each corrupt PDF has two dead letters.
			runs := map[string]int{}
			for _, tk := range up["tasks"].([]any) {
				m := tk.(map[string]any)
				st := api.task(m["task_id"].(string))
				if strings.HasPrefix(m["filename"].(string), "note-") && (st["state"] != "SUCCESS" || st["attempts"] != 1.0) {
					t.Errorf("note %v: %v, want SUCCESS after one run", m["filename"], st)
				}
				runs[m["task_id"].(string)] = 0
			}
			_, dlq := api.do(http.MethodGet, "/api/v1/dlq?limit=100", nil, "")
			for _, dl := range dlq["dead_letters"].([]any) {
				if id, _ := dl.(map[string]any)["task_id"].(string); id != "" {
					if _, ok := runs[id]; ok {
						runs[id]++
					}
				}
			}
			dead := 0
			for _, n := range runs {
				if n != 0 && n != 2 {
					t.Errorf("a task of the batch has %d dead letters, want 0 or 2: %v", n, runs)
				}
				if n == 2 {
					dead++
				}
			}
			if dead != 2 {
				t.Errorf("%d tasks of the batch dead-lettered twice, want the 2 corrupt PDFs", dead)
			}
		})
	}
}
