package docstore

import "github.com/jackc/pgx/v5/pgtype"

// sign is the sign of x as quire_sign_bits (migration 00002) sees it: PostgreSQL orders NaN
// above every number, so NaN counts as positive; zero (either sign) is neither.
func sign(x float32) int {
	switch {
	case x > 0 || x != x:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// sketch is the stored sign sketch of v, bit for bit what quire_sign_bits(v, true) and
// quire_sign_bits(v, false) return: pos has bit i set where v[i] is positive, neg where it is
// negative. A nil v (no embedding) has no sketch: NULL, as the function is STRICT.
func sketch(v []float32) (pos, neg pgtype.Bits) {
	if v == nil {
		return pgtype.Bits{}, pgtype.Bits{}
	}
	n := (len(v) + 7) / 8
	buf := make([]byte, 2*n)
	p, m := buf[:n:n], buf[n:]
	for i, x := range v {
		bit := byte(0x80) >> (i % 8)
		switch sign(x) {
		case 1:
			p[i/8] |= bit
		case -1:
			m[i/8] |= bit
		}
	}
	return pgtype.Bits{Bytes: p, Len: int32(len(v)), Valid: true}, pgtype.Bits{Bytes: m, Len: int32(len(v)), Valid: true}
}

// signBits is the sketch of a query vector as bit-string literals, for comparison with the
// stored sketches.
func signBits(v []float32) (pos, neg string) {
	p, m := make([]byte, len(v)), make([]byte, len(v))
	for i, x := range v {
		p[i], m[i] = '0', '0'
		switch sign(x) {
		case 1:
			p[i] = '1'
		case -1:
			m[i] = '1'
		}
	}
	return string(p), string(m)
}
