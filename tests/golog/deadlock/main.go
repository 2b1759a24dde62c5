// deadlock blocks every goroutine, so the runtime prints "fatal error: all goroutines are
// asleep - deadlock!". It is its own program because klog's init keeps a goroutine that
// hides the deadlock from the runtime; golog -case deadlock execs it.
package main

import "sync"

func main() {
	ch := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ch <- 1; ch <- 2 }()
	<-ch
	wg.Wait()
}
