package graph

import (
	"errors"
	"sync"
)

// WebsocketLimits bound the websockets one replica holds open at once; 0
// lifts a cap.
type WebsocketLimits struct {
	// Anonymous caps those acknowledged without a credential: they can
	// subscribe to nothing, yet stay open as long as their client likes.
	Anonymous int
	// PerCredential caps those of one credential (a user's sign-ins
	// together, an app's secret key), each of which may run
	// MaxSubscriptions subscriptions.
	PerCredential int
	// Pending caps those whose connection_init is not acknowledged yet, and
	// PendingPerIP those of one client IP: anyone may open one, and it holds
	// a goroutine and its buffers for up to initTimeout.
	Pending, PendingPerIP int
}

// websocketPlaces counts the websockets open on this replica against
// WebsocketLimits. A websocket takes a pending place, for its client IP,
// before it is upgraded, and trades it at connection_init for a place
// among those without a credential or those of its credential. A
// connection without a credential can subscribe to nothing, yet it stays
// open for as long as its client likes; one with a credential can be
// opened as often as its holder likes, each holding tens of KB.
type websocketPlaces struct {
	limits WebsocketLimits

	mu           sync.Mutex
	anonymous    int
	byCredential map[string]int
	pending      int
	pendingByIP  map[string]int
}

func newWebsocketPlaces(limits WebsocketLimits) *websocketPlaces {
	return &websocketPlaces{limits: limits, byCredential: map[string]int{}, pendingByIP: map[string]int{}}
}

// errPendingFull refuses an upgrade from a client IP that has all its
// pending places, errAllPendingFull one when the replica has none left.
var (
	errPendingFull    = errors.New("too many websockets from this address are waiting for connection_init; send it, or wait for them to time out")
	errAllPendingFull = errors.New("too many websockets are waiting for connection_init on this server; retry later")
)

// takePending takes a pending place for a websocket from ip, or says why
// none is left.
func (p *websocketPlaces) takePending(ip string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.limits.PendingPerIP > 0 && p.pendingByIP[ip] >= p.limits.PendingPerIP:
		return errPendingFull
	case p.limits.Pending > 0 && p.pending >= p.limits.Pending:
		return errAllPendingFull
	}
	p.pending++
	p.pendingByIP[ip]++
	return nil
}

// givePending gives back a place takePending took.
func (p *websocketPlaces) givePending(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending--
	if p.pendingByIP[ip]--; p.pendingByIP[ip] <= 0 {
		delete(p.pendingByIP, ip)
	}
}

// take takes a place for credential ("": none), reporting false when none
// is left.
func (p *websocketPlaces) take(credential string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if credential == "" {
		if p.limits.Anonymous > 0 && p.anonymous >= p.limits.Anonymous {
			return false
		}
		p.anonymous++
		return true
	}
	if p.limits.PerCredential > 0 && p.byCredential[credential] >= p.limits.PerCredential {
		return false
	}
	p.byCredential[credential]++
	return true
}

// give gives back a place take took.
func (p *websocketPlaces) give(credential string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if credential == "" {
		p.anonymous--
		return
	}
	if p.byCredential[credential]--; p.byCredential[credential] <= 0 {
		delete(p.byCredential, credential)
	}
}

// errAnonymousFull refuses a connection without a credential when
// websocketPlaces has no place left for it, errCredentialFull one with a
// credential that has all its places.
var (
	errAnonymousFull  = errors.New("too many websockets without a credential are open; send one in connection_init")
	errCredentialFull = errors.New("too many websockets are open with this credential; close some")
)
