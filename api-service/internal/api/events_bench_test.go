package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// BenchmarkTaskEvents100Clients measures what 100 concurrent event streams cost one API
// replica: each iteration opens 100 streams (one per task), waits for each one's first event,
// and reports the growth of the heap and of goroutine stacks while they are open, in MB
// ("MB/100streams"), then ends them. The figure includes both ends (the in-process NATS
// server's watch consumers and the test's HTTP clients run in the same process), so it is an
// upper bound of the API's own share.
func BenchmarkTaskEvents100Clients(b *testing.B) {
	const clients = 100
	e := newEnvWith(b, api.Config{})
	kv, err := e.js.KeyValue(b.Context(), job.TasksBucket)
	if err != nil {
		b.Fatal(err)
	}
	statuses := taskstatus.New(kv, e.js, 0)
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-task-%03d", i)
		if err := statuses.Create(b.Context(), &job.Status{TaskID: ids[i], State: job.StatePending, TenantID: "acme", Total: 100}); err != nil {
			b.Fatal(err)
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var grown float64
	for b.Loop() {
		before := memInUse()
		ctx, cancel := context.WithCancel(b.Context())
		var opened, done sync.WaitGroup
		errs := make(chan error, clients)
		for _, id := range ids {
			opened.Add(1)
			done.Go(func() {
				first := false
				defer func() {
					if !first {
						opened.Done()
					}
				}()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/tasks/"+id+"/events", nil)
				req.Header.Set("Authorization", "Bearer "+tokenAcme)
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if !first && strings.HasPrefix(sc.Text(), "event: status") {
						first = true
						opened.Done()
					}
				}
			})
		}
		opened.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		grown += float64(memInUse()-before) / 1e6
		cancel()
		done.Wait()
	}
	b.ReportMetric(grown/float64(b.N), "MB/100streams")
}

// memInUse is the heap in use and the goroutine stacks, after a collection.
func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
