package chunk

import (
	"fmt"
	"hash/maphash"
	"math/bits"
)

// rankTable is a byte-pair encoding's vocabulary (token bytes → rank) in memory the garbage
// collector does not scan: an open-addressing hash table of fixed-size slots and the bytes of
// every token in one array. A map[string]int of the same vocabulary is some 100,000 strings
// that every collection cycle marks again; this is two pointer-free blocks.
type rankTable struct {
	seed  maphash.Seed
	slots []rankSlot // a power of two, at most half full
	arena []byte
}

// rankSlot is a token's hash and its entry: the offset of its bytes in arena (high 32 bits),
// their length (next 8) and its rank (low 24). An empty slot has entry 0 (no token is empty).
type rankSlot struct {
	hash, entry uint64
}

// newRankTable builds the table of ranks. It fails if a token or rank does not fit an entry.
func newRankTable(ranks map[string]int) (*rankTable, error) {
	size := 0
	for tok := range ranks {
		size += len(tok)
	}
	if size >= 1<<32 {
		return nil, fmt.Errorf("chunk: vocabulary of %d bytes is too large", size)
	}
	t := &rankTable{
		seed:  maphash.MakeSeed(),
		slots: make([]rankSlot, 1<<bits.Len(uint(2*len(ranks)))),
		arena: make([]byte, 0, size),
	}
	mask := uint64(len(t.slots) - 1)
	for tok, r := range ranks {
		if len(tok) == 0 || len(tok) >= 1<<8 || r < 0 || r >= 1<<24 {
			return nil, fmt.Errorf("chunk: vocabulary token %q (rank %d) does not fit the table", tok, r)
		}
		h := maphash.String(t.seed, tok)
		i := h & mask
		for t.slots[i].entry != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = rankSlot{hash: h, entry: uint64(len(t.arena))<<32 | uint64(len(tok))<<24 | uint64(r)}
		t.arena = append(t.arena, tok...)
	}
	return t, nil
}

// lookup returns the rank of the token s, if it is one.
func (t *rankTable) lookup(s string) (int, bool) {
	h := maphash.String(t.seed, s)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		slot := &t.slots[i]
		if slot.entry == 0 {
			return 0, false
		}
		if slot.hash != h {
			continue
		}
		start, n := slot.entry>>32, slot.entry>>24&0xff
		if n == uint64(len(s)) && string(t.arena[start:start+n]) == s {
			return int(slot.entry & (1<<24 - 1)), true
		}
	}
}
