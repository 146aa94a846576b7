package modelstest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a client under test and its database server
// that can fail the way stores fail in production: Stop is a stopped server
// (connections reset, new ones refused), Freeze is a server that hangs
// (SIGSTOP, a full disk, a network partition: connections stay open and
// nothing moves in either direction until Thaw).
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu      sync.Mutex
	ln      net.Listener
	frozen  bool
	thawed  *sync.Cond
	conns   map[net.Conn]struct{}
	held    int // chunks read while frozen, waiting to be forwarded
	stopped bool
}

// NewProxy listens on a free loopback port and forwards to target
// (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.thawed = sync.NewCond(&p.mu)
	go p.serve(ln)
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.addr }

// Stop resets every connection and refuses new ones until Start.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.ln.Close()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, as from a server that went away
		}
		c.Close()
	}
	p.frozen = false
	p.thawed.Broadcast()
}

// Start accepts connections again after Stop, on the same address.
func (p *Proxy) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		return
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; the kernel may take a moment to free it.
	for range 100 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.ln, p.stopped = ln, false
	go p.serve(ln)
}

// Freeze stops all traffic: bytes already sent wait in the proxy, new
// connections are accepted but get no answer, until Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw forwards what was held and lets traffic flow again.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.thawed.Broadcast()
	p.mu.Unlock()
}

// Held reports how many chunks of traffic and new connections wait for
// Thaw: a client is stuck on the frozen store once it is above zero.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// WaitHeld waits until at least n chunks or connections are held (see
// Held). A connection holds at most one chunk from its client, so when the
// store was idle as it froze, n calls on connections of their own have all
// reached it once n are held.
func (p *Proxy) WaitHeld(n int, timeout time.Duration) {
	p.t.Helper()
	for end := time.Now().Add(timeout); p.Held() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			p.Thaw()
			p.t.Fatalf("proxy: %d of %d calls reached the frozen store within %s", p.Held(), n, timeout)
		}
	}
}

func (p *Proxy) close() { p.Stop() }

func (p *Proxy) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		go p.handle(client)
	}
}

// track registers c so that Stop closes it; false if the proxy is stopped.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) handle(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	// A frozen server completes the TCP handshake (the kernel does) and then
	// says nothing: dial only once thawed.
	if !p.waitThawed(true) {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	// One side ended: end the other, as the peer's kernel would.
	client.Close()
	server.Close()
	<-done
}

// pipe copies from src to dst, holding every chunk while the proxy is frozen.
// A client that gives up on a frozen server still has its last bytes (say,
// a COMMIT) delivered on Thaw, as a kernel's socket buffer would.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitThawed(true) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			// The sender closed: pass that on once thawed.
			if p.waitThawed(false) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			return
		}
	}
}

// waitThawed blocks while the proxy is frozen; false if it was stopped
// meanwhile. counted says whether it holds traffic (see Held).
func (p *Proxy) waitThawed(counted bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen && counted {
		p.held++
		defer func() { p.held-- }()
	}
	for p.frozen && !p.stopped {
		p.thawed.Wait()
	}
	return !p.stopped
}
