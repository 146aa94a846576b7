package models

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Event ids are made here rather than by AUTO_INCREMENT so that a multi-row
// insert knows every row's id without relying on consecutive auto-increment
// values (which interleaved lock modes, TiDB and Vitess do not promise).
// Layout: 41 bits of milliseconds since idEpoch, 10 bits of node, 12 of sequence.
// The node is random per process; a collision between two replicas surfaces as
// a duplicate key, and the writer retries with fresh ids.
//
// The milliseconds are the clock's, but never below idFloor: once the event
// log is sealed up to some id (eventlog.go), a replica whose clock runs
// behind moves its ids past the seal instead of making ids nobody derives.
var idEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// idFloor is the lowest millisecond (since idEpoch) new ids may use.
var idFloor atomic.Int64

// raiseIDFloor makes every later id greater than id.
func raiseIDFloor(id uint64) {
	ms := int64(id>>22) + 1
	for {
		cur := idFloor.Load()
		if cur >= ms || idFloor.CompareAndSwap(cur, ms) {
			return
		}
	}
}

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
	return g.nextLocked()
}

// nextN fills ids with new ids under one lock.
func (g *idGenerator) nextN(ids []uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range ids {
		ids[i] = g.nextLocked()
	}
}

func (g *idGenerator) nextLocked() uint64 {
	now := max(time.Since(idEpoch).Milliseconds(), idFloor.Load())
	switch {
	case now > g.last:
		g.last, g.seq = now, 0
	case g.seq < 0xfff:
		g.seq++
	default:
		// 4096 ids in this millisecond: borrow the next one, so ids stay
		// unique without waiting (they run ahead of the clock by well under
		// a millisecond at any rate this process can reach).
		g.last, g.seq = g.last+1, 0
	}
	return uint64(g.last)<<22 | g.node<<12 | g.seq
}

// idTime is the millisecond an id was made in.
func idTime(id uint64) time.Time { return idEpoch.Add(time.Duration(id>>22) * time.Millisecond) }

// lastIDAt is the greatest id that can be made at or before t.
func lastIDAt(t time.Time) uint64 {
	ms := t.Sub(idEpoch).Milliseconds()
	if ms < 0 {
		return 0
	}
	return uint64(ms)<<22 | (1<<22 - 1)
}
