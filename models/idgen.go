package models

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// Event ids are made here rather than by AUTO_INCREMENT so that a multi-row
// insert knows every row's id without relying on consecutive auto-increment
// values (which interleaved lock modes, TiDB and Vitess do not promise).
// Layout: 41 bits of milliseconds since idEpoch, 10 bits of node, 12 of sequence.
// The node is random per process; a collision between two replicas surfaces as
// a duplicate key, and the writer retries with fresh ids.
var idEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type idGenerator struct {
	mu   sync.Mutex
	node uint64
	last int64
	seq  uint64
}

func newIDGenerator() *idGenerator {
	g := &idGenerator{}
	g.reseed()
	return g
}

// reseed draws a new node; writers running in parallel call it while others
// draw ids, hence the lock.
func (g *idGenerator) reseed() {
	var b [2]byte
	rand.Read(b[:])
	g.mu.Lock()
	g.node = uint64(binary.BigEndian.Uint16(b[:])) & 0x3ff
	g.mu.Unlock()
}

// next returns a new id, waiting for the next millisecond if 4096 were used in this one.
func (g *idGenerator) next() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		now := time.Since(idEpoch).Milliseconds()
		if now > g.last {
			g.last, g.seq = now, 0
		} else if g.seq < 0xfff {
			g.seq++
		} else {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		return uint64(g.last)<<22 | g.node<<12 | g.seq
	}
}
