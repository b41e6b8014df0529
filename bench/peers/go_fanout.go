// SPDX-License-Identifier: MIT
// Go peer of bench/fanout: JOBS runs of CMD through os/exec, at most PAR
// at once (PAR goroutines taking the next job from one counter), stdout
// and stderr captured into buffers, stdin null.  Standard library only.
//
//	go-fanout JOBS PAR [--max-seconds S] [--warm N] -- CMD [ARG...]
//
// --max-seconds: start no job after S seconds (the count is the jobs done).
// Prints one JSON line, as the C programs do.  Built by bench/run.py with
// `go build` (Debian's golang-go).
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func one(cmd []string) int {
	var out, errb bytes.Buffer
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go-fanout: %s: %v\n", cmd[0], err)
		os.Exit(1)
	}
	return out.Len() + errb.Len()
}

// run returns the jobs done and the bytes captured.
func run(n, par int, deadline time.Time, cmd []string) (int64, int64) {
	var next, done, nbytes int64
	var wg sync.WaitGroup
	if par > n {
		par = n
	}
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= int64(n) {
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				b := one(cmd)
				atomic.AddInt64(&nbytes, int64(b))
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	wg.Wait()
	return done, nbytes
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go-fanout JOBS PAR [--max-seconds S] [--warm N] -- CMD [ARG...]")
	os.Exit(2)
}

func main() {
	a := os.Args
	if len(a) < 4 {
		usage()
	}
	n, err1 := strconv.Atoi(a[1])
	par, err2 := strconv.Atoi(a[2])
	if err1 != nil || err2 != nil || n <= 0 || par <= 0 {
		usage()
	}
	maxS, warm, i := 0.0, 10, 3
	for ; i < len(a) && a[i] != "--"; i += 2 {
		if i+1 >= len(a) {
			usage()
		}
		var err error
		switch a[i] {
		case "--max-seconds":
			maxS, err = strconv.ParseFloat(a[i+1], 64)
		case "--warm":
			warm, err = strconv.Atoi(a[i+1])
		default:
			usage()
		}
		if err != nil {
			usage()
		}
	}
	if i+1 >= len(a) {
		usage()
	}
	cmd := a[i+1:]
	if warm > n {
		warm = n
	}
	if warm > 0 {
		run(warm, par, time.Time{}, cmd)
	}
	t0 := time.Now()
	var deadline time.Time
	if maxS > 0 {
		deadline = t0.Add(time.Duration(maxS * float64(time.Second)))
	}
	count, nbytes := run(n, par, deadline, cmd)
	s := time.Since(t0).Seconds()
	fmt.Printf("{\"method\":\"go-os/exec\",\"seconds\":%.9f,\"count\":%d,\"bytes\":%d,\"engine\":\"%s\",\"gomaxprocs\":%d}\n",
		s, count, nbytes, runtime.Version(), runtime.GOMAXPROCS(0))
}
