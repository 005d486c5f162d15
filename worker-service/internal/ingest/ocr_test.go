package ingest_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

// ocrInstall is the command that installs what the OCR tests need.
const ocrInstall = "apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng poppler-utils"

// needOCR fails the test under CI when tesseract or pdftoppm is missing, and skips it
// elsewhere.
func needOCR(t *testing.T) {
	t.Helper()
	if err := extract.OCRAvailable(extract.Options{}); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("OCR unavailable: %v; install with: %s", err, ocrInstall)
		}
		t.Skipf("OCR unavailable (%v); install with: %s", err, ocrInstall)
	}
}

// pngOf renders a one-page PDF as a 300-dpi grey PNG with pdftoppm.
func pngOf(t *testing.T, pdf []byte) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "pdftoppm", "-r", "300", "-gray", "-png", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdftoppm: %v", err)
	}
	return out
}

// pngBomb is a PNG whose header declares 50000x50000 pixels, in a few hundred bytes.
func pngBomb() []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(append(b, typ...), data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 50000), 50000)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	return append(append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", ihdr)...), chunk("IDAT", make([]byte, 256))...)
}

// An uploaded image is recognised and stored; hostile images fail at once into the dead
// letter queue, and the worker goes on recognising the next upload.
func TestImageUploadsAreRecognised(t *testing.T) {
	needOCR(t)
	e := newEnv(t, envOptions{ocr: true})
	scan := pngOf(t, quiretest.PDF([]string{"Harbour dues are payable at the office by the slipway.", "Visiting yachts pay per metre per night."}))
	upload := func(name string, data []byte) *job.Job {
		t.Helper()
		j := &job.Job{Kind: job.KindDocument, Filename: name, ContentType: "image/png"}
		j.TaskID = "ocr-" + strings.TrimSuffix(name, ".png")
		j.Object = j.TaskID
		if _, err := e.documents.Uploads.Objects().PutBytes(t.Context(), j.Object, data); err != nil {
			t.Fatal(err)
		}
		return e.submit(t, j)
	}
	hostile := []struct{ name, wantErr string }{
		{"bomb.png", "exceeds extraction limits"},
		{"truncated.png", "corrupt document"},
		{"labelled.png", "corrupt document"},
	}
	data := map[string][]byte{
		"bomb.png":      pngBomb(),
		"truncated.png": scan[:len(scan)/3],
		// PNG magic, then garbage: sniffed as a PNG, refused by its header.
		"labelled.png": append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xA5, 0x13}, 500)...),
	}
	for _, h := range hostile {
		j := upload(h.name, data[h.name])
		st := e.waitState(t, j.TaskID, job.StateFailure)
		if st.Attempts != 1 || !strings.Contains(st.Error, h.wantErr) {
			t.Fatalf("%s: status %+v, want one attempt and an error containing %q", h.name, st, h.wantErr)
		}
		if d := e.doc(t, j.DocumentID); d.Status != job.DocFailed {
			t.Fatalf("%s: document %+v, want failed", h.name, d)
		}
	}
	var dead int
	for _, m := range deadLetters(t, e.js) {
		if m.Subject == "dlq.high.document" {
			dead++
		}
	}
	if dead != len(hostile) {
		t.Fatalf("%d dead letters, want %d", dead, len(hostile))
	}
	j := upload("scan.png", scan)
	st := e.wait(t, j.TaskID, 60*time.Second, "SUCCESS", func(st *job.Status) bool { return st.State.Terminal() })
	if st.State != job.StateSuccess || st.ChunkCount == 0 {
		t.Fatalf("scan after hostile images: status %+v", st)
	}
	if text := chunkText(e.chunks(t, j.DocumentID)); !strings.Contains(text, "slipway") || !strings.Contains(text, "yachts") {
		t.Fatalf("chunks %q lack the recognised text", text)
	}
}
