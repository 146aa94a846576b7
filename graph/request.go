package graph

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// RequestInfo is what resolvers need to know about the HTTP request.
type RequestInfo struct {
	ID        string
	UserAgent string
	// Origin is the browser's Origin header, if any.
	Origin string
	// BaseURL is the scheme and host the request was sent to, for URLs
	// shown to the caller (a new ingest token's webhook URL).
	BaseURL string
	// ClientIP is the caller's address: the peer, or the X-Forwarded-For
	// entry added by the nearest trusted proxy.
	ClientIP string
	// status lets a resolver change the HTTP status (429 for rate limits).
	status *statusOverride
}

type requestInfoKey struct{}

// RequestInfoFrom returns the request info stored in ctx.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info
}

// RequestOptions configure RequestMiddleware.
type RequestOptions struct {
	// RequestID reads the id the server assigned to the request.
	RequestID func(*http.Request) string
	// Tokens verifies access tokens; nil accepts none.
	Tokens *models.Tokens
	// DB is where Tokens looks up whether a sign-in has ended.
	DB *gorm.DB
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
}

// RequestMiddleware works out who is asking and from where: the bearer
// credential (an app secret key `sk_…`, or a dashboard access token), the
// client IP, origin and user agent.
func RequestMiddleware(opts RequestOptions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := RequestInfo{
			ID: opts.RequestID(r), UserAgent: r.UserAgent(), Origin: r.Header.Get("Origin"), BaseURL: baseURL(r),
			ClientIP: ClientIP(r, opts.TrustedProxies), status: &statusOverride{},
		}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		v := viewerFor(ctx, opts.DB, r.Header.Get("Authorization"), opts.Tokens)
		ctx = models.WithViewer(ctx, v)
		next.ServeHTTP(&statusWriter{ResponseWriter: w, override: info.status}, r.WithContext(ctx))
	})
}

// viewerFor reads an Authorization value: an app secret key `sk_…` or a
// dashboard access token, after "Bearer ".
func viewerFor(ctx context.Context, db *gorm.DB, auth string, tokens *models.Tokens) models.Viewer {
	var v models.Viewer
	if auth == "" {
		return v
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	token = strings.TrimSpace(token)
	switch {
	case !ok || token == "":
		v.Err = models.Unauthenticated("use Authorization: Bearer <token>")
	case strings.HasPrefix(token, "sk_"):
		v.Secret = token
	case tokens == nil:
		v.Err = models.Unauthenticated("access tokens are not accepted here")
	default:
		grant, err := tokens.VerifyAccessToken(ctx, db, token)
		v.UserID, v.SignInID, v.Err = grant.UserID, grant.SignInID, err
	}
	return v
}

// ClientIP trusts X-Forwarded-For only as far as trusted proxies added it:
// walking from the right, the first address that is not a trusted proxy is
// the client.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer.Unmap().String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !isTrusted(a) {
			return a.Unmap().String()
		}
		peer = a
	}
	return peer.Unmap().String()
}

// statusOverride carries a status that a resolver wants instead of 200
// (or, with replace, instead of whatever the transport answers).
// Resolvers of one request run concurrently, hence the lock.
type statusOverride struct {
	mu         sync.Mutex
	code       int
	retryAfter time.Duration
	replace    bool
	allow      string // the Allow header of a 405
}

// setRateLimited makes the response a 429 with Retry-After.
func setRateLimited(ctx context.Context, retryAfter time.Duration) {
	if s := RequestInfoFrom(ctx).status; s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.code != http.StatusServiceUnavailable {
			s.code = http.StatusTooManyRequests
			s.retryAfter = max(s.retryAfter, retryAfter)
		}
	}
}

// retryAfterUnavailable is what a client is told to wait when the store is
// unavailable.
const retryAfterUnavailable = models.RetryAfterUnavailable

// setUnavailable makes the response a 503 with Retry-After; it wins over a
// rate limit, since retrying sooner cannot help.
func setUnavailable(ctx context.Context) {
	if s := RequestInfoFrom(ctx).status; s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.code = http.StatusServiceUnavailable
		s.retryAfter = retryAfterUnavailable
	}
}

// setMethodNotAllowed makes the response a 405 with Allow: allow, whatever
// status the transport gives the refusal.
func setMethodNotAllowed(ctx context.Context, allow string) {
	if s := RequestInfoFrom(ctx).status; s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.code, s.replace, s.allow = http.StatusMethodNotAllowed, true, allow
	}
}

type statusWriter struct {
	http.ResponseWriter
	override    *statusOverride
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.override.mu.Lock()
	override, retryAfter, replace, allow := w.override.code, w.override.retryAfter, w.override.replace, w.override.allow
	w.override.mu.Unlock()
	if (code == http.StatusOK || replace) && override != 0 {
		code = override
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
		}
		if allow != "" {
			w.Header().Set("Allow", allow)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// baseURL is the scheme and host a request was sent to; behind a proxy that
// terminates TLS, X-Forwarded-Proto says https.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
