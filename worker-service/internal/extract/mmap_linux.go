package extract

import (
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each WebAssembly linear memory with its own anonymous mapping,
// reserved at the memory's maximum (capped by Options.PDFMemoryLimitMB) and committed only as
// pages are touched. Growing never copies (a Go slice would briefly hold the old and the new
// buffer, so a decompression bomb would peak at two to three times the cap) and a closed
// instance gives its memory straight back to the system instead of to the Go heap.
type mmapAllocator struct{}

func (mmapAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &failedMemory{}
	}
	return &mmapMemory{buf: buf}
}

type mmapMemory struct{ buf []byte }

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // past the cap: memory.grow fails inside the module
	}
	return m.buf[:size:size]
}

// Free returns the pages to the system at once. The mapping itself is removed a little
// later: a killed instance (Options.Timeout) may have its memory freed while its last call is
// still unwinding, and must find the addresses mapped (reading zeros) rather than fault.
func (m *mmapMemory) Free() {
	if m.buf == nil {
		return
	}
	buf := m.buf
	m.buf = nil
	_ = syscall.Madvise(buf, syscall.MADV_DONTNEED)
	time.AfterFunc(unmapDelay, func() { _ = syscall.Munmap(buf) })
}

const unmapDelay = 30 * time.Second

// failedMemory is a memory that could not be reserved: every growth fails.
type failedMemory struct{}

func (*failedMemory) Reallocate(size uint64) []byte {
	if size == 0 {
		return []byte{}
	}
	return nil
}
func (*failedMemory) Free() {}

func memoryAllocator() experimental.MemoryAllocator { return mmapAllocator{} }
