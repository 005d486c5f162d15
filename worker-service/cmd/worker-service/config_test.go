package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

func TestConfigDefaults(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.AckWait != 30*time.Second || c.MaxRetries != 3 || c.RetryBaseDelay != time.Minute || c.RetryMaxDelay != 10*time.Minute ||
		c.ChunkSize != 512 || c.ChunkOverlap != 64 || c.EmbeddingsProvider != "local" || c.ResultTTL != time.Hour ||
		c.OCREngine != "" || c.OCRLanguages != "eng" || c.OCRPageTimeout != time.Minute || c.OCRDPI != 300 {
		t.Fatalf("defaults = %+v", c)
	}
	slots, err := c.slots()
	if err != nil {
		t.Fatal(err)
	}
	want := map[job.Priority]int{job.PriorityHigh: 4, job.PriorityMedium: 8, job.PriorityLow: 16}
	for p, n := range want {
		if slots[p] != n {
			t.Errorf("slots[%s] = %d, want %d", p, slots[p], n)
		}
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"missing database", "DATABASE_URL", "", "DATABASE_URL"},
		{"bad queue", "WORKER_QUEUES", "high,urgent", "WORKER_QUEUES"},
		{"metering neither on nor off", "USAGE_METERING", "maybe", "USAGE_METERING"},
		{"bad duration", "ACK_WAIT", "soon", "ACK_WAIT"},
		{"tiny ack wait", "ACK_WAIT", "10ms", "ACK_WAIT"},
		{"bad nats url", "NATS_URL", "localhost", "NATS_URL"},
		{"negative retries", "MAX_RETRIES", "-1", "MAX_RETRIES"},
		{"overlap too big", "CHUNK_OVERLAP", "600", "CHUNK_OVERLAP"},
		{"bad provider", "EMBEDDINGS_PROVIDER", "magic", "EMBEDDINGS_PROVIDER"},
		{"bad level", "LOG_LEVEL", "loud", "LOG_LEVEL"},
		{"zero slots", "WORKER_CONCURRENCY_LOW", "0", "WORKER_CONCURRENCY_LOW"},
		{"bad ocr engine", "OCR_ENGINE", "abbyy", "OCR_ENGINE"},
		{"bad ocr languages", "OCR_LANGUAGES", "eng,deu", "OCR_LANGUAGES"},
		{"zero ocr page timeout", "OCR_PAGE_TIMEOUT", "0s", "OCR_PAGE_TIMEOUT"},
		{"ocr dpi too high", "OCR_DPI", "4800", "OCR_DPI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
			t.Setenv(tt.key, tt.value)
			_, err := loadConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadConfig with %s=%q: error %v, want one naming %s", tt.key, tt.value, err, tt.want)
			}
		})
	}
}

func TestWorkerQueuesSelectsPools(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
	t.Setenv("WORKER_QUEUES", "medium, low")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	slots, _ := c.slots()
	if len(slots) != 2 || slots[job.PriorityHigh] != 0 || slots[job.PriorityLow] != 16 {
		t.Fatalf("slots = %v", slots)
	}
}

// CHUNK_OVERLAP=0 is accepted and means no overlap, not the chunker's default of 64.
func TestChunkOverlapZeroMeansNone(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
	t.Setenv("CHUNK_SIZE", "40")
	for _, tc := range []struct {
		env  string
		want int
	}{{"0", 0}, {"12", 12}} {
		t.Setenv("CHUNK_OVERLAP", tc.env)
		c, err := loadConfig()
		if err != nil {
			t.Fatalf("CHUNK_OVERLAP=%s: %v", tc.env, err)
		}
		opts := c.chunking(nil)
		if got := opts.WithDefaults().Overlap; got != tc.want {
			t.Errorf("CHUNK_OVERLAP=%s: chunks overlap by %d tokens, want %d", tc.env, got, tc.want)
		}
		// Chunks of one section: with no overlap, their words add up to the section's.
		text := strings.Repeat("alpha beta gamma delta epsilon. ", 40)
		chunks := chunk.Split(&extract.Document{Sections: []extract.Section{{Text: text}}}, opts)
		if len(chunks) < 2 {
			t.Fatalf("CHUNK_OVERLAP=%s: %d chunks, want several", tc.env, len(chunks))
		}
		words := 0
		for _, ch := range chunks {
			words += len(strings.Fields(ch.Content))
		}
		if src := len(strings.Fields(text)); (words == src) != (tc.want == 0) {
			t.Errorf("CHUNK_OVERLAP=%s: chunks hold %d words of the section's %d", tc.env, words, src)
		}
	}
}

// An unset OCR_ENGINE turns OCR on only where tesseract is installed: with an empty PATH it is
// off, and the worker still starts.
func TestOCREngineAutoDetect(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	t.Setenv("PATH", t.TempDir())
	if got := extractOptions(c, log).OCREngine; got != extract.OCROff {
		t.Fatalf("OCR engine without tesseract = %q, want off", got)
	}
	c.OCREngine = "tesseract"
	if got := extractOptions(c, log).OCREngine; got != extract.OCRTesseract {
		t.Fatalf("OCR_ENGINE=tesseract became %q", got)
	}
}
