// Command goerrors provokes real Go failures with real libraries and logs each one as a
// zap production JSON line carrying errloop_label = "category/class/retryable".
//
// The label is set by the scenario that provoked the failure (which failure this code
// caused on purpose), never by looking at the error text: it is the ground truth the
// classifier is measured against (benchmarks/classify_accuracy.py).
//
//	goerrors            # every scenario, JSON lines on stdout, a summary on stderr
//	goerrors -crash M   # child mode: crash the process the way M says (used by the crash scenarios)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Labels: category/class/retryable. The category names follow rules/default/classify.yaml.
func label(category, class string, retryable bool) string {
	return fmt.Sprintf("%s/%s/%t", category, class, retryable)
}

type recorder struct {
	log     *zap.Logger
	count   int
	kinds   map[string]int
	skipped []string
}

func newRecorder() *recorder {
	cfg := zap.NewProductionConfig()
	cfg.OutputPaths = []string{"stdout"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.Sampling = nil // every case is logged, even the repeated ones
	cfg.EncoderConfig.EncodeTime = zapcore.EpochTimeEncoder
	// caller and stacktrace start at the scenario, not at emit/write (two frames skipped)
	log, err := cfg.Build(zap.WithClock(fixedClock{}), zap.AddCallerSkip(2))
	if err != nil {
		panic(err)
	}
	return &recorder{log: log, kinds: map[string]int{}}
}

// fixedClock keeps the captured file stable between runs (the timestamps are not under test).
type fixedClock struct{}

func (fixedClock) Now() time.Time                         { return time.Unix(1767225600, 0) }
func (fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// emit logs one provoked failure. kind names the scenario family (for the summary);
// err must be the error the scenario provoked: nil means the scenario failed to provoke it.
func (r *recorder) emit(kind, lbl, msg string, err error, fields ...zap.Field) {
	r.write(kind, lbl, msg, err, fields)
}

func (r *recorder) write(kind, lbl, msg string, err error, fields []zap.Field) {
	if err == nil {
		r.skip(kind, "no error was provoked")
		return
	}
	fields = append([]zap.Field{zap.String("service", "orders-api"), zap.Error(err), zap.String("errloop_label", lbl)}, fields...)
	r.log.Error(msg, fields...)
	r.count++
	r.kinds[kind]++
}

// emitIf logs err only when ok says the scenario really provoked the intended failure
// (e.g. errors.Is(err, syscall.ECONNRESET)); otherwise the case is skipped and reported.
func (r *recorder) emitIf(ok bool, kind, lbl, msg string, err error, fields ...zap.Field) {
	if !ok {
		r.skip(kind, fmt.Sprintf("unexpected outcome: %v", err))
		return
	}
	r.write(kind, lbl, msg, err, fields)
}

func (r *recorder) skip(kind, why string) {
	r.skipped = append(r.skipped, kind+": "+why)
}

func main() {
	crash := flag.String("crash", "", "child mode: crash this way")
	only := flag.String("only", "", "comma-separated scenario groups to run (default all)")
	flag.Parse()
	if *crash != "" {
		crashNow(*crash) // never returns
	}
	r := newRecorder()
	groups := []struct {
		name string
		run  func(*recorder)
	}{
		{"runtime", runtimeScenarios},
		{"crash", crashScenarios},
		{"context", contextScenarios},
		{"net", netScenarios},
		{"dns", dnsScenarios},
		{"tls", tlsScenarios},
		{"http", httpScenarios},
		{"decode", decodeScenarios},
		{"db", dbScenarios},
		{"rpc", rpcScenarios},
		{"os", osScenarios}, // last: may drop privileges (permission denied as root)
	}
	want := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if g != "" {
			want[g] = true
		}
	}
	for _, g := range groups {
		if len(want) == 0 || want[g.name] {
			g.run(r)
		}
	}
	_ = r.log.Sync()
	kinds := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(os.Stderr, "goerrors: %d lines, %d kinds\n", r.count, len(kinds))
	for _, k := range kinds {
		fmt.Fprintf(os.Stderr, "  %-28s %d\n", k, r.kinds[k])
	}
	for _, s := range r.skipped {
		fmt.Fprintf(os.Stderr, "  skipped %s\n", s)
	}
}

var errNotProvoked = errors.New("scenario did not fail")
