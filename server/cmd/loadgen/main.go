// Command loadgen drives a running Crumbs server with concurrent trigger or
// triggerBatch mutations and prints events/s and latency percentiles.
//
//	go run ./server admin create -email load@example.com     # once, password on stdin
//	CRUMBS_PASSWORD=... go run ./server/cmd/loadgen -email load@example.com -c 64 -d 10s
//	CRUMBS_PASSWORD=... go run ./server/cmd/loadgen -email load@example.com -c 8 -d 10s -batch 500
//
// It signs in, creates an app with the codes it uses, and sends the triggers
// as a backend server would: with the app's secret key.
//
// It only targets loopback addresses: it is a benchmark, not a weapon.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

func main() {
	var err error
	switch args := os.Args[1:]; {
	case len(args) > 0 && args[0] == "compare":
		err = runCompare(args[1:], os.Stdout)
	case len(args) > 0 && args[0] == "serve-reference":
		err = serveReference(args[1:], os.Stdout)
	default:
		err = run(args, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	target      string
	email       string
	password    string
	concurrency int
	duration    time.Duration
	batch       int
	devices     int
	codes       int
	// prefix begins every messageId (default: one per run)
	prefix string
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.target, "url", "http://127.0.0.1:8080/graphql", "GraphQL endpoint (loopback only)")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connections")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long to run")
	fs.IntVar(&o.batch, "batch", 0, "events per triggerBatch request (0: one trigger per request)")
	fs.IntVar(&o.devices, "devices", 100000, "distinct device ids")
	fs.IntVar(&o.codes, "codes", 10, "distinct event codes")
	fs.StringVar(&o.email, "email", os.Getenv("CRUMBS_EMAIL"), "dashboard user to sign in as (CRUMBS_EMAIL)")
	o.password = os.Getenv("CRUMBS_PASSWORD")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(o.target); err != nil {
		return err
	}
	if o.email == "" || o.password == "" {
		return errors.New("set -email (or CRUMBS_EMAIL) and CRUMBS_PASSWORD for a user made with `server admin create`")
	}
	if o.batch > 500 || o.concurrency < 1 || o.codes < 1 || o.devices < 1 {
		return errors.New("need -batch <= 500, -c >= 1, -codes >= 1, -devices >= 1")
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}
	appID, secret, err := setup(client, o)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var mu sync.Mutex
	var latencies []time.Duration
	var events, failures int
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Go(func() {
			var mine []time.Duration
			n, failed := 0, 0
			var werr error
			for seq := 0; ctx.Err() == nil; seq++ {
				body := requestBody(o, appID, w, seq)
				t0 := time.Now()
				accepted, err := post(client, o.target, secret, body)
				if ctx.Err() != nil && err != nil {
					break
				}
				mine = append(mine, time.Since(t0))
				n += accepted
				if err != nil {
					failed++
					if werr == nil {
						werr = err
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			events += n
			failures += failed
			if firstErr == nil {
				firstErr = werr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	mode := "trigger"
	if o.batch > 0 {
		mode = fmt.Sprintf("triggerBatch(%d)", o.batch)
	}
	fmt.Fprintf(out, "%s  c=%d  %s: %d requests, %d events stored, %d failed\n", mode, o.concurrency, elapsed.Round(time.Millisecond), len(latencies), events, failures)
	fmt.Fprintf(out, "  %.0f events/s  %.0f requests/s  p50 %s  p99 %s  max %s\n",
		float64(events)/elapsed.Seconds(), float64(len(latencies))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if firstErr != nil {
		return fmt.Errorf("%d requests failed, first: %w", failures, firstErr)
	}
	return nil
}

func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address", host)
}

// setup signs in and creates an app with the codes the load uses.
func setup(client *http.Client, o options) (appID, secret string, err error) {
	var login struct {
		Data struct{ Login struct{ AccessToken string } }
	}
	err = graphql(client, o.target, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": o.email, "p": o.password}, &login)
	if err != nil {
		return "", "", err
	}
	token := login.Data.Login.AccessToken
	var created struct {
		Data struct {
			CreateApp struct {
				App       struct{ ID string }
				SecretKey string
			}
		}
	}
	err = graphql(client, o.target, token, `mutation { createApp(input: {name: "loadgen"}) { app { id } secretKey } }`, nil, &created)
	if err != nil {
		return "", "", err
	}
	appID = created.Data.CreateApp.App.ID
	for i := range o.codes {
		err := graphql(client, o.target, token, `mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`,
			map[string]any{"a": appID, "c": code(i)}, nil)
		if err != nil {
			return "", "", err
		}
	}
	return appID, created.Data.CreateApp.SecretKey, nil
}

func code(i int) string { return "load_" + strconv.Itoa(i) }

const (
	triggerQuery = `mutation($in: TriggerInput!) { trigger(input: $in) { accepted duplicate eventId } }`
	batchQuery   = `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted duplicate eventId } }`
)

var runID = randomHex(6)

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// requestBody builds a request by appending to a byte slice: the generator
// shares the machine with the server, so it must spend little CPU itself.
func requestBody(o options, appID string, worker, seq int) []byte {
	b := make([]byte, 0, 256+max(o.batch, 1)*256)
	b = append(b, `{"query":`...)
	if o.batch == 0 {
		b = strconv.AppendQuote(b, triggerQuery)
		b = append(b, `,"variables":{"in":`...)
		b = appendItem(b, o, appID, worker, seq)
	} else {
		b = strconv.AppendQuote(b, batchQuery)
		b = append(b, `,"variables":{"in":[`...)
		for i := range o.batch {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendItem(b, o, appID, worker, seq*o.batch+i)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

func appendItem(b []byte, o options, appID string, worker, n int) []byte {
	b = append(b, `{"appId":"`...)
	b = append(b, appID...)
	b = append(b, `","deviceId":"dev-`...)
	b = strconv.AppendInt(b, int64((worker*7919+n)%o.devices), 10)
	b = append(b, `","code":"`...)
	b = append(b, code(n%o.codes)...)
	b = append(b, `","url":"https://example.com/page/`...)
	b = strconv.AppendInt(b, int64(n%50), 10)
	b = append(b, `","messageId":"`...)
	b = append(b, cmp.Or(o.prefix, runID)...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","source":"api","properties":{"n":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "}}"...)
}

type result struct {
	Accepted  bool
	Duplicate bool
	EventID   string
}

// post sends one request and returns how many events it stored.
func post(client *http.Client, target, bearer string, body []byte) (int, error) {
	n, _, err := postAny(client, target, bearer, body)
	return n, err
}

// postAny sends one request to a GraphQL trigger mutation or the JSON
// endpoint and returns how many events it stored and their ids.
func postAny(client *http.Client, target, bearer string, body []byte) (int, []uint64, error) {
	var resp struct {
		Data struct {
			Trigger      *result
			TriggerBatch []result
		}
		Errors []struct{ Message string }
		// the JSON endpoint's answer to one event
		Accepted  *bool
		Duplicate bool
		EventID   string `json:"event_id"`
		Error     *struct{ Code, Message string }
	}
	if err := do(client, target, bearer, body, &resp); err != nil {
		return 0, nil, err
	}
	if len(resp.Errors) > 0 {
		return 0, nil, errors.New(resp.Errors[0].Message)
	}
	if resp.Error != nil {
		return 0, nil, errors.New(resp.Error.Code + ": " + resp.Error.Message)
	}
	results := resp.Data.TriggerBatch
	if resp.Data.Trigger != nil {
		results = append(results, *resp.Data.Trigger)
	}
	if resp.Accepted != nil {
		results = append(results, result{Accepted: *resp.Accepted, Duplicate: resp.Duplicate, EventID: resp.EventID})
	}
	n := 0
	var ids []uint64
	for _, r := range results {
		if r.Accepted && !r.Duplicate {
			n++
			if id, err := strconv.ParseUint(r.EventID, 10, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	if n != len(results) {
		return n, ids, fmt.Errorf("%d of %d events not stored", len(results)-n, len(results))
	}
	return n, ids, nil
}

func graphql(client *http.Client, target, bearer, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	var resp struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := do(client, target, bearer, body, &resp); err != nil {
		return err
	}
	if len(resp.Errors) > 0 {
		return errors.New(resp.Errors[0].Message)
	}
	if out != nil {
		return json.Unmarshal(fmt.Appendf(nil, `{"data":%s}`, resp.Data), out)
	}
	return nil
}

func do(client *http.Client, target, bearer string, body []byte, out any) error {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
