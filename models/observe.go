package models

import "time"

// WriterObserver is told what the writer does, for metrics. Its methods are
// called on request and writer goroutines, so they must return quickly and
// never block; they must not keep the slices they are given.
type WriterObserver interface {
	// Triggered sees the inputs and results of every Trigger call, in order.
	Triggered(inputs []TriggerInput, results []TriggerResult)
	// Committed sees every group commit: the requests and events in it, how
	// long it took, and the error that failed it, if it did.
	Committed(requests, events int, took time.Duration, err error)
}

type noObserver struct{}

func (noObserver) Triggered([]TriggerInput, []TriggerResult) {}
func (noObserver) Committed(int, int, time.Duration, error)  {}

// QueueDepth is the number of requests waiting for a group commit.
func (w *Writer) QueueDepth() int { return len(w.queue) }
