package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// inventory is the slow downstream: an HTTP server on another loopback port inside the
// same process, answering after a fixed delay (longer than the caller's deadline).
type inventory struct {
	url string
	srv *http.Server
}

func startInventory(delay time.Duration) (*inventory, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("inventory listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stock", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"stock": 7})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &inventory{url: "http://" + ln.Addr().String(), srv: srv}, nil
}

func (i *inventory) Close() error { return i.srv.Close() }

type inventoryClient struct {
	base    string
	timeout time.Duration
	http    *http.Client
}

func newInventoryClient(base string, timeout time.Duration) *inventoryClient {
	return &inventoryClient{base: base, timeout: timeout, http: &http.Client{}}
}

// stock asks the inventory for a SKU's stock within the client's timeout. A missed
// deadline comes back as "call inventory: context deadline exceeded" (errors.Is
// context.DeadlineExceeded), without the downstream URL, whose port changes per run.
func (c *inventoryClient) stock(ctx context.Context, sku string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/stock?sku="+url.QueryEscape(sku), nil)
	if err != nil {
		return 0, fmt.Errorf("call inventory: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, fmt.Errorf("call inventory: %w", ctxErr)
		}
		return 0, fmt.Errorf("call inventory: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("call inventory: status %d", resp.StatusCode)
	}
	var body struct {
		Stock int `json:"stock"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("call inventory: decode: %w", err)
	}
	if body.Stock < 0 {
		return 0, errors.New("call inventory: negative stock")
	}
	return body.Stock, nil
}
