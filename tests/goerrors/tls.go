package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"go.uber.org/zap"
)

// selfSigned makes a certificate for names valid from notBefore to notAfter, and a pool trusting it.
func selfSigned(notBefore, notAfter time.Time, names ...string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"errloop test"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func tlsServer(cfg *tls.Config) *httptest.Server {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	ts.TLS = cfg
	ts.Config.ErrorLog = discardLog()
	ts.StartTLS()
	return ts
}

func clientWith(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
}

func tlsScenarios(r *recorder) {
	cert := label("tls_cert", "system", false)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	ts.Config.ErrorLog = discardLog()
	ts.StartTLS()
	defer ts.Close()
	_, err := http.Get(ts.URL + "/v1/charge")
	var ua x509.UnknownAuthorityError
	r.emitIf(errors.As(err, &ua), "tls_cert", cert, "payment call failed", fmt.Errorf("charge order %d: %w", 77, err))
	_, err = clientWith(&tls.Config{}).Post(ts.URL+"/v1/refund", "application/json", nil)
	r.emitIf(errors.As(err, &ua), "tls_cert", cert, "refund call failed", err)

	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	_, err = clientWith(&tls.Config{RootCAs: pool, ServerName: "billing.internal"}).Get(ts.URL + "/v1/invoices")
	var hn x509.HostnameError
	r.emitIf(errors.As(err, &hn), "tls_cert", cert, "invoice fetch failed", fmt.Errorf("list invoices: %w", err))

	expiredCert, expiredPool := selfSigned(time.Now().Add(-60*24*time.Hour), time.Now().Add(-24*time.Hour), "127.0.0.1", "ledger.internal")
	exp := tlsServer(&tls.Config{Certificates: []tls.Certificate{expiredCert}})
	defer exp.Close()
	_, err = clientWith(&tls.Config{RootCAs: expiredPool}).Get(exp.URL + "/v1/ledger")
	var ce x509.CertificateInvalidError
	r.emitIf(errors.As(err, &ce) && ce.Reason == x509.Expired, "tls_cert", cert, "ledger sync failed", fmt.Errorf("sync ledger: %w", err))
	conn, err := tls.Dial("tcp", exp.Listener.Addr().String(), &tls.Config{RootCAs: expiredPool, ServerName: "ledger.internal"})
	if err == nil {
		_ = conn.Close()
	}
	r.emitIf(errors.As(err, &ce), "tls_cert", cert, "ledger connect failed", err)

	goodCert, goodPool := selfSigned(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "127.0.0.1")
	mtls := tlsServer(&tls.Config{Certificates: []tls.Certificate{goodCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: goodPool})
	defer mtls.Close()
	_, err = clientWith(&tls.Config{RootCAs: goodPool}).Get(mtls.URL + "/v1/secrets")
	r.emitIf(err != nil, "tls_cert", cert, "secret fetch failed", fmt.Errorf("fetch secret %q: %w", "db-password", err))

	hs := label("tls_handshake", "system", false)
	old := tlsServer(&tls.Config{Certificates: []tls.Certificate{goodCert}, MinVersion: tls.VersionTLS13})
	defer old.Close()
	_, err = clientWith(&tls.Config{RootCAs: goodPool, MaxVersion: tls.VersionTLS12}).Get(old.URL + "/v1/status")
	r.emitIf(err != nil, "tls_handshake", hs, "status check failed", err)
	ciph := tlsServer(&tls.Config{Certificates: []tls.Certificate{goodCert}, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	defer ciph.Close()
	_, err = clientWith(&tls.Config{RootCAs: goodPool, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}}).Get(ciph.URL + "/v1/status")
	r.emitIf(err != nil, "tls_handshake", hs, "partner api call failed", fmt.Errorf("call partner api: %w", err))
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer plain.Close()
	conn, err = tls.Dial("tcp", plain.Listener.Addr().String(), &tls.Config{RootCAs: goodPool})
	if err == nil {
		_ = conn.Close()
	}
	r.emitIf(err != nil, "tls_handshake", hs, "smtp starttls failed", fmt.Errorf("connect mail relay: %w", err))
	_, err = http.Get("https://" + plain.Listener.Addr().String() + "/v1/users")
	r.emitIf(err != nil, "tls_handshake", hs, "user sync failed", err, zap.String("url", "https://"+plain.Listener.Addr().String()+"/v1/users"))
}
