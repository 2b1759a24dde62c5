// Command deadlock blocks every goroutine so the runtime reports
// "fatal error: all goroutines are asleep - deadlock!". It is a separate program because
// packages goerrors imports keep goroutines of their own, which hide a deadlock.
package main

import (
	"os"
	"sync"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "waitgroup" {
		var wg sync.WaitGroup
		wg.Add(1)
		wg.Wait()
	}
	ch := make(chan int)
	<-ch
}
