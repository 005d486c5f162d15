//go:build !linux

package extract

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is wazero's default (Go slices) where the mmap allocator is not built.
func memoryAllocator() experimental.MemoryAllocator { return nil }
