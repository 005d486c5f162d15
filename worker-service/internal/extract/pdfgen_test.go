package extract

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"fmt"
	"image/color"
	"image/jpeg"
	"strings"
)

// pdfSpec describes a PDF generated for a test: real PDF syntax (objects, an xref table,
// Type1 Helvetica text), optionally RC4-encrypted (standard security handler, revision 2) or
// with a flate-compressed content stream.
type pdfSpec struct {
	pages     [][]string // lines of text per page; a nil page has a drawing and no text
	title     string
	userPW    string // with encrypt: the user password ("" opens without one)
	encrypt   bool
	flate     bool
	bombBytes int // with flate: this many spaces follow the text of page 1 in its stream
	junk      int // bytes of junk before %PDF-
	// scans[i], when not nil, is a JPEG drawn over the whole of page i (a scanned page).
	scans [][]byte
	// mediaBox replaces every page's [0 0 612 792] (US Letter).
	mediaBox string
}

var pdfPad = []byte{0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
	0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A}

func padPassword(pw string) []byte {
	return append([]byte(pw), pdfPad...)[:32]
}

func rc4Bytes(key, data []byte) []byte {
	c, err := rc4.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(data))
	c.XORKeyStream(out, data)
	return out
}

func pdfEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`).Replace(s)
}

func makePDF(s pdfSpec) []byte {
	type obj struct {
		dict   string
		stream []byte
		// image: the stream is an image XObject with this dictionary (already compressed)
		image string
		str   string // a string value object (encrypted like strings are)
	}
	var objs []obj // object n is objs[n-1]
	add := func(o obj) int { objs = append(objs, o); return len(objs) }

	catalog := add(obj{})
	pagesObj := add(obj{})
	font := add(obj{dict: "<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>"})
	var kids []string
	for i, lines := range s.pages {
		var cs bytes.Buffer
		xobj := ""
		if i < len(s.scans) && s.scans[i] != nil {
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(s.scans[i]))
			if err != nil {
				panic(err)
			}
			space := "DeviceRGB"
			if cfg.ColorModel == color.GrayModel {
				space = "DeviceGray"
			}
			im := add(obj{stream: s.scans[i], image: fmt.Sprintf("/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace/%s/BitsPerComponent 8/Filter/DCTDecode", cfg.Width, cfg.Height, space)})
			xobj = fmt.Sprintf("/XObject<</Im0 %d 0 R>>", im)
			cs.WriteString("q 612 0 0 792 0 0 cm /Im0 Do Q\n")
		}
		if lines == nil && xobj == "" {
			cs.WriteString("0.5 w 72 72 m 300 500 l S 100 100 200 200 re f\n")
		} else if lines != nil {
			cs.WriteString("BT /F1 12 Tf 14 TL 72 720 Td\n")
			for _, l := range lines {
				fmt.Fprintf(&cs, "(%s) Tj T*\n", pdfEscape(l))
			}
			cs.WriteString("ET\n")
		}
		if i == 0 && s.bombBytes > 0 {
			cs.Write(bytes.Repeat([]byte{' '}, s.bombBytes))
		}
		content := add(obj{stream: cs.Bytes()})
		box := "[0 0 612 792]"
		if s.mediaBox != "" {
			box = s.mediaBox
		}
		page := add(obj{dict: fmt.Sprintf("<</Type/Page/Parent %d 0 R/MediaBox%s/Resources<</Font<</F1 %d 0 R>>%s>>/Contents %d 0 R>>", pagesObj, box, font, xobj, content)})
		kids = append(kids, fmt.Sprintf("%d 0 R", page))
	}
	objs[catalog-1].dict = fmt.Sprintf("<</Type/Catalog/Pages %d 0 R>>", pagesObj)
	objs[pagesObj-1].dict = fmt.Sprintf("<</Type/Pages/Kids[%s]/Count %d>>", strings.Join(kids, " "), len(kids))
	info := 0
	if s.title != "" {
		info = add(obj{str: s.title})
	}

	id := md5.Sum([]byte(fmt.Sprint(s.pages)))
	var fileKey []byte
	var encDict string
	if s.encrypt {
		perms := int32(-44)
		ownerKey := md5.Sum(padPassword("owner-" + s.userPW))
		o := rc4Bytes(ownerKey[:5], padPassword(s.userPW))
		h := md5.New()
		h.Write(padPassword(s.userPW))
		h.Write(o)
		_ = binary.Write(h, binary.LittleEndian, uint32(perms))
		h.Write(id[:])
		fileKey = h.Sum(nil)[:5]
		u := rc4Bytes(fileKey, pdfPad)
		encDict = fmt.Sprintf("<</Filter/Standard/V 1/R 2/Length 40/O<%x>/U<%x>/P %d>>", o, u, perms)
	}
	objKey := func(n int) []byte {
		k := append([]byte{}, fileKey...)
		k = append(k, byte(n), byte(n>>8), byte(n>>16), 0, 0)
		sum := md5.Sum(k)
		return sum[:min(len(fileKey)+5, 16)]
	}

	var b bytes.Buffer
	b.WriteString(strings.Repeat("J", s.junk))
	start := b.Len()
	b.WriteString("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n")
	offsets := make([]int, 0, len(objs)+1)
	write := func(n int, body string, stream []byte) {
		offsets = append(offsets, b.Len()-start)
		fmt.Fprintf(&b, "%d 0 obj\n", n)
		if stream != nil {
			fmt.Fprintf(&b, "%s\nstream\n", body)
			b.Write(stream)
			b.WriteString("\nendstream\nendobj\n")
			return
		}
		fmt.Fprintf(&b, "%s\nendobj\n", body)
	}
	for i, o := range objs {
		n := i + 1
		switch {
		case o.image != "":
			data := o.stream
			if s.encrypt {
				data = rc4Bytes(objKey(n), data)
			}
			write(n, fmt.Sprintf("<<%s/Length %d>>", o.image, len(data)), data)
		case o.stream != nil:
			data := o.stream
			filter := ""
			if s.flate {
				var z bytes.Buffer
				zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
				_, _ = zw.Write(data)
				_ = zw.Close()
				data, filter = z.Bytes(), "/Filter/FlateDecode"
			}
			if s.encrypt {
				data = rc4Bytes(objKey(n), data)
			}
			write(n, fmt.Sprintf("<</Length %d%s>>", len(data), filter), data)
		case o.str != "":
			v := []byte(o.str)
			if s.encrypt {
				v = rc4Bytes(objKey(n), v)
			}
			write(n, fmt.Sprintf("<</Title<%x>>>", v), nil)
		default:
			write(n, o.dict, nil)
		}
	}
	enc := 0
	if s.encrypt {
		enc = len(objs) + 1
		write(enc, encDict, nil)
	}
	xref := b.Len() - start
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d/Root %d 0 R/ID[<%x><%x>]", len(offsets)+1, catalog, id, id)
	if info > 0 {
		fmt.Fprintf(&b, "/Info %d 0 R", info)
	}
	if enc > 0 {
		fmt.Fprintf(&b, "/Encrypt %d 0 R", enc)
	}
	fmt.Fprintf(&b, ">>\nstartxref\n%d\n%%%%EOF\n", xref)
	return b.Bytes()
}
