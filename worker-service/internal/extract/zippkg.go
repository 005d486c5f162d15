package extract

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxXMLDepth bounds the element nesting of any XML part read from a package: real documents
// nest a few dozen deep; a hostile part nesting millions deep fails instead of growing the
// decoder's stack.
const maxXMLDepth = 1000

// zipPackage is a zip-based document package (DOCX, PPTX, XLSX, OpenDocument, EPUB) read under
// explicit limits: entries, bytes per part and in total counted as they are read, compression
// ratio, XML depth. Its XML is read with encoding/xml, which never expands entities; any DTD
// is refused.
type zipPackage struct {
	opts  Options
	kind  string // the format, for messages ("docx", "pptx")
	files map[string]*zip.File
	names []string // entry names in archive order
	read  int64    // uncompressed bytes read from the whole package
}

// openZip opens the package r of size bytes, checking the entry count.
func (e *Extractor) openZip(r io.ReaderAt, size int64, kind string) (*zipPackage, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a readable zip archive: %v", ErrCorrupt, kind, err)
	}
	if n := len(zr.File); n > e.opts.MaxZipEntries {
		return nil, fmt.Errorf("%w: %s: %d zip entries, limit %d", ErrTooLarge, kind, n, e.opts.MaxZipEntries)
	}
	pk := &zipPackage{opts: e.opts, kind: kind, files: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		pk.files[f.Name] = f
		pk.names = append(pk.names, f.Name)
	}
	return pk, nil
}

// open opens a part under the size, ratio and total limits.
func (pk *zipPackage) open(name string, maxPart int64) (io.ReadCloser, *countingReader, error) {
	f := pk.files[name]
	if f == nil {
		return nil, nil, fmt.Errorf("%w: %s: no part %s", ErrCorrupt, pk.kind, name)
	}
	if f.UncompressedSize64 > uint64(maxPart) {
		return nil, nil, fmt.Errorf("%w: %s: part %s declares %d bytes uncompressed, limit %d", ErrTooLarge, pk.kind, name, f.UncompressedSize64, maxPart)
	}
	if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64 > uint64(pk.opts.MaxZipRatio)*max(f.CompressedSize64, 1) {
		return nil, nil, fmt.Errorf("%w: %s: part %s compressed %d:1, limit %d:1 (zip bomb?)", ErrTooLarge, pk.kind, name, f.UncompressedSize64/max(f.CompressedSize64, 1), pk.opts.MaxZipRatio)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: open %s: %v", ErrCorrupt, pk.kind, name, err)
	}
	cr := &countingReader{r: rc, pk: pk, name: name, partMax: maxPart}
	return rc, cr, nil
}

// scan streams the XML tokens of a part to fn, failing with ErrTooLarge past maxXMLDepth.
func (pk *zipPackage) scan(name string, maxPart int64, fn func(*xml.Decoder, xml.Token) error) error {
	rc, cr, err := pk.open(name, maxPart)
	if err != nil {
		return err
	}
	defer rc.Close()
	d := xml.NewDecoder(cr)
	d.Strict = true // and d.Entity stays nil: only the five predefined entities exist
	depth := 0
	for {
		t, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if cr.err != nil {
				return cr.err
			}
			return fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, pk.kind, name, err)
		}
		switch t := t.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: %s: %s: document type declarations are not allowed (%.20q)", ErrCorrupt, pk.kind, name, t)
		case xml.StartElement:
			if depth++; depth > maxXMLDepth {
				return fmt.Errorf("%w: %s: %s: XML nested more than %d elements deep", ErrTooLarge, pk.kind, name, maxXMLDepth)
			}
		case xml.EndElement:
			depth--
		}
		if err := fn(d, t); err != nil {
			return err
		}
	}
}

// readPart reads a whole part under the size, ratio and total limits.
func (pk *zipPackage) readPart(name string, maxPart int64) ([]byte, error) {
	rc, cr, err := pk.open(name, maxPart)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(cr)
	if err != nil {
		if cr.err != nil {
			return nil, cr.err
		}
		return nil, fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, pk.kind, name, err)
	}
	return b, nil
}

// countingReader enforces the per-part and whole-package limits on bytes actually read,
// whatever the zip headers declare.
type countingReader struct {
	r       io.Reader
	pk      *zipPackage
	name    string
	n       int64
	partMax int64
	err     error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.pk.read += int64(n)
	switch {
	case c.n > c.partMax:
		c.err = fmt.Errorf("%w: %s: part %s inflates past %d bytes", ErrTooLarge, c.pk.kind, c.name, c.partMax)
	case c.pk.read > c.pk.opts.MaxZipTotalBytes:
		c.err = fmt.Errorf("%w: %s: package inflates past %d bytes", ErrTooLarge, c.pk.kind, c.pk.opts.MaxZipTotalBytes)
	}
	if c.err != nil {
		return 0, c.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// zip.ErrFormat (sizes that lie), zip.ErrChecksum, a truncated stream.
		c.err = fmt.Errorf("%w: %s: part %s: %v", ErrCorrupt, c.pk.kind, c.name, err)
		return n, c.err
	}
	return n, err
}

// titleOf reads the first title element (dc:title) of an XML part, if any.
func (pk *zipPackage) titleOf(part string) string {
	var b strings.Builder
	in := false
	_ = pk.scan(part, 1<<20, func(d *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			in = t.Name.Local == "title"
		case xml.EndElement:
			in = false
		case xml.CharData:
			if in && b.Len() < 1024 {
				b.Write(t)
			}
		}
		return nil
	})
	return strings.TrimSpace(b.String())
}
