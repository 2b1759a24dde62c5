package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// closedAddr: a loopback address nothing listens on (listen, note the port, close).
func closedAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// serve accepts connections on a fresh loopback listener and hands each to h.
func serve(h func(net.Conn)) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h(c)
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close() }
}

// resetConn closes c with SO_LINGER 0: the kernel answers with a RST.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func contextScenarios(r *recorder) {
	dl := label("context_deadline", "transient", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	<-ctx.Done()
	r.emit("context_deadline", dl, "load dashboard failed", fmt.Errorf("load dashboard for user %d: %w", 42, ctx.Err()))
	cancel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-req.Context().Done():
		}
	}))
	defer slow.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL+"/v1/inventory/sku-9", nil)
	_, err := http.DefaultClient.Do(req)
	cancel()
	r.emitIf(errors.Is(err, context.DeadlineExceeded), "context_deadline", dl, "inventory lookup failed",
		fmt.Errorf("check stock: %w", err))
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(5*time.Millisecond))
	err = waitWork(ctx)
	cancel()
	r.emit("context_deadline", dl, "report generation failed", fmt.Errorf("generate report %q: step %d: %w", "monthly", 3, err))

	cn := label("context_canceled", "transient", false)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	r.emit("context_canceled", cn, "request aborted", fmt.Errorf("list orders: %w", waitWork(ctx)))
	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, slow.URL+"/v1/users/7", nil)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = http.DefaultClient.Do(req)
	r.emitIf(errors.Is(err, context.Canceled), "context_canceled", cn, "fetch user failed", fmt.Errorf("fetch user 7: %w", err))
	ctx, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(errors.New("client went away"))
	r.emit("context_canceled", cn, "stream closed", fmt.Errorf("stream events: %w", ctx.Err()))
}

func waitWork(ctx context.Context) error {
	select {
	case <-time.After(5 * time.Second):
		return errNotProvoked
	case <-ctx.Done():
		return ctx.Err()
	}
}

func netScenarios(r *recorder) {
	refused := label("conn_refused", "transient", true)
	addr := closedAddr()
	_, err := net.Dial("tcp", addr)
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "conn_refused", refused, "cache unavailable", fmt.Errorf("connect redis: %w", err))
	_, err = http.Get("http://" + closedAddr() + "/v1/users/42")
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "conn_refused", refused, "user service call failed", fmt.Errorf("get user %d: %w", 42, err))
	_, err = (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", closedAddr())
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "conn_refused", refused, "publish failed", err)
	_, err = http.Post("http://"+closedAddr()+"/hooks", "application/json", strings.NewReader("{}"))
	r.emitIf(errors.Is(err, syscall.ECONNREFUSED), "conn_refused", refused, "webhook delivery failed", fmt.Errorf("deliver webhook %s: %w", "wh_1", err))

	reset := label("conn_reset", "transient", true)
	addr, stop := serve(func(c net.Conn) {
		buf := make([]byte, 64)
		_, _ = c.Read(buf)
		resetConn(c)
	})
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_, _ = c.Write([]byte("PING\r\n"))
		_, err = c.Read(make([]byte, 64))
		_ = c.Close()
	}
	r.emitIf(errors.Is(err, syscall.ECONNRESET), "conn_reset", reset, "cache read failed", fmt.Errorf("redis GET session:9: %w", err))
	_, err = http.Get("http://" + addr + "/v1/prices")
	r.emitIf(errors.Is(err, syscall.ECONNRESET), "conn_reset", reset, "price lookup failed", fmt.Errorf("fetch prices: %w", err))
	// write after the peer reset: first ECONNRESET, then EPIPE (broken pipe)
	var resetErr, pipeErr error
	for attempt := 0; attempt < 5 && (resetErr == nil || pipeErr == nil); attempt++ {
		c, err = net.Dial("tcp", addr)
		if err != nil {
			break
		}
		_, _ = c.Write([]byte("x"))
		time.Sleep(20 * time.Millisecond)
		for i := 0; i < 50; i++ {
			_, err = c.Write([]byte("payload chunk\n"))
			if errors.Is(err, syscall.EPIPE) && pipeErr == nil {
				pipeErr = err
				break
			}
			if errors.Is(err, syscall.ECONNRESET) && resetErr == nil {
				resetErr = err
			}
			time.Sleep(2 * time.Millisecond)
		}
		_ = c.Close()
	}
	r.emitIf(resetErr != nil, "conn_reset", reset, "upload failed", fmt.Errorf("upload part %d: %w", 3, resetErr))
	r.emitIf(pipeErr != nil, "broken_pipe", reset, "stream write failed", fmt.Errorf("write event stream: %w", pipeErr))
	r.emitIf(pipeErr != nil, "broken_pipe", reset, "flush failed", pipeErr)
	stop()

	timeout := label("io_timeout", "transient", true)
	silent, stopSilent := serve(func(c net.Conn) { time.Sleep(3 * time.Second); _ = c.Close() })
	defer stopSilent()
	c, err = net.Dial("tcp", silent)
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err = c.Read(make([]byte, 16))
		_ = c.Close()
	}
	r.emitIf(errors.Is(err, os.ErrDeadlineExceeded), "io_timeout", timeout, "cache read failed", fmt.Errorf("redis GET cart:5: %w", err))
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/body" {
			w.WriteHeader(200)
			_, _ = w.Write([]byte("{\"items\": ["))
			w.(http.Flusher).Flush()
		}
		select {
		case <-time.After(2 * time.Second):
		case <-req.Context().Done():
		}
	}))
	defer slow.Close()
	client := &http.Client{Timeout: 40 * time.Millisecond}
	_, err = client.Get(slow.URL + "/v1/rates")
	r.emitIf(isTimeout(err), "io_timeout", timeout, "exchange rates unavailable", fmt.Errorf("get rates: %w", err))
	resp, err := client.Get(slow.URL + "/body")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	r.emitIf(isTimeout(err), "io_timeout", timeout, "catalog download failed", fmt.Errorf("read catalog: %w", err))
	hdr := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Millisecond}}
	_, err = hdr.Get(slow.URL + "/v1/shipping/quote")
	r.emitIf(isTimeout(err), "io_timeout", timeout, "shipping quote failed", err)
	tlsSilent, stopTLS := serve(func(c net.Conn) { time.Sleep(2 * time.Second); _ = c.Close() })
	defer stopTLS()
	hs := &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 30 * time.Millisecond}}
	_, err = hs.Get("https://" + tlsSilent + "/v1/charge")
	r.emitIf(isTimeout(err), "io_timeout", timeout, "payment call failed", fmt.Errorf("charge card: %w", err))
	client2 := &http.Client{Timeout: 25 * time.Millisecond}
	_, err = client2.Post(slow.URL+"/v1/events", "application/json", strings.NewReader(`{"type":"signup"}`))
	r.emitIf(isTimeout(err), "io_timeout", timeout, "event publish failed", fmt.Errorf("publish signup event: %w", err))

	eof := label("eof", "transient", true)
	hangup, stopHangup := serve(func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_ = c.Close()
	})
	defer stopHangup()
	_, err = http.Get("http://" + hangup + "/v1/orders")
	r.emitIf(errors.Is(err, io.EOF), "eof", eof, "order sync failed", fmt.Errorf("sync orders: %w", err))
	_, err = http.Post("http://"+hangup+"/v1/orders", "application/json", strings.NewReader(`{"id":1}`))
	r.emitIf(errors.Is(err, io.EOF), "eof", eof, "create order call failed", err)
	header := make([]byte, 16)
	_, err = io.ReadFull(bufio.NewReader(strings.NewReader("HDR1")), header)
	r.emitIf(errors.Is(err, io.ErrUnexpectedEOF), "eof", eof, "frame decode failed", fmt.Errorf("read frame header: %w", err))
	var length uint32
	err = binary.Read(strings.NewReader("\x00\x01"), binary.BigEndian, &length)
	r.emitIf(errors.Is(err, io.ErrUnexpectedEOF), "eof", eof, "message decode failed", fmt.Errorf("read length prefix: %w", err))
	_, err = bufio.NewReader(strings.NewReader("")).ReadString('\n')
	r.emitIf(errors.Is(err, io.EOF), "eof", eof, "control connection closed", fmt.Errorf("read command: %w", err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// --- DNS: a tiny UDP DNS server answering every question with one response code (or never)

func fakeDNS(rcode byte, answer bool) (string, func()) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if !answer || n < 12 {
				continue
			}
			q := buf[:n]
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // zero label, QTYPE, QCLASS
			if end > n {
				continue
			}
			resp := make([]byte, 0, end)
			resp = append(resp, q[0], q[1], 0x81|(q[2]&0x01), 0x80|rcode, 0, 1, 0, 0, 0, 0, 0, 0)
			resp = append(resp, q[12:end]...)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String(), func() { _ = pc.Close() }
}

func resolverTo(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", addr)
	}}
}

func dnsScenarios(r *recorder) {
	notFound := label("dns", "system", false)
	temporary := label("dns", "transient", true)
	nx, stopNX := fakeDNS(3, true)
	defer stopNX()
	res := resolverTo(nx)
	_, err := res.LookupHost(context.Background(), "billing.invalid")
	var de *net.DNSError
	r.emitIf(errors.As(err, &de) && de.IsNotFound, "dns", notFound, "resolve failed", fmt.Errorf("resolve billing host: %w", err))
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: res}).DialContext}}
	_, err = client.Get("http://inventory.prod.svc.invalid:8080/v1/items")
	r.emitIf(errors.As(err, &de) && de.IsNotFound, "dns", notFound, "inventory call failed", fmt.Errorf("list items: %w", err))
	_, err = (&net.Dialer{Resolver: res}).Dial("tcp", "postgres-primary.invalid:5432")
	r.emitIf(errors.As(err, &de) && de.IsNotFound, "dns", notFound, "database dial failed", err)

	sf, stopSF := fakeDNS(2, true)
	defer stopSF()
	_, err = resolverTo(sf).LookupHost(context.Background(), "api.partner.example")
	r.emitIf(errors.As(err, &de) && de.IsTemporary, "dns", temporary, "resolve failed", fmt.Errorf("resolve partner api: %w", err))
	client = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: resolverTo(sf)}).DialContext}}
	_, err = client.Get("http://auth.internal.example/v1/token")
	r.emitIf(errors.As(err, &de) && de.IsTemporary, "dns", temporary, "token refresh failed", fmt.Errorf("refresh token: %w", err))

	mute, stopMute := fakeDNS(0, false)
	defer stopMute()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	_, err = resolverTo(mute).LookupHost(ctx, "queue.internal.example")
	cancel()
	r.emitIf(errors.As(err, &de) && de.IsTimeout, "dns", temporary, "resolve failed", fmt.Errorf("connect queue: %w", err))
	ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
	_, err = (&net.Dialer{Resolver: resolverTo(mute)}).DialContext(ctx, "tcp", "kafka-0.internal.example:9092")
	cancel()
	r.emitIf(errors.As(err, &de) && de.IsTimeout, "dns", temporary, "broker dial failed", fmt.Errorf("dial broker: %w", err),
		zap.String("broker", "kafka-0"))
}
