// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A Go program for run-programs.sh: a large map and a large slice, hundreds
// of goroutines (on as many OS threads as the runtime wants) that keep
// checking random entries, state of their own and allocate garbage, with the
// collector running all along. Requests on standard input, one answer line
// each on standard output:
//
//	(at start)  READY <digest>
//	verify      OK <digest> ticks=<n> goroutines=<n>   (every goroutine ran since)
//	         or FAIL <reason>
//	quit        BYE
//
// usage: program ENTRIES GOROUTINES
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	entries int
	table   map[string]uint64
	slice   []uint64
	ticks   []int64
	errMu   sync.Mutex
	errs    []string
)

func value(i int) uint64 { return uint64(i) * 2654435761 & 0xffffffff }

func slot(i int) uint64 { return uint64(i)*0x9e3779b97f4a7c15 ^ 0x5555 }

func report(format string, a ...interface{}) {
	errMu.Lock()
	errs = append(errs, fmt.Sprintf(format, a...))
	errMu.Unlock()
}

func digest() string {
	h := sha256.New()
	var b [8]byte
	for i := 0; i < entries; i++ {
		k := "key-" + strconv.Itoa(i)
		binary.LittleEndian.PutUint64(b[:], table[k])
		h.Write([]byte(k))
		h.Write(b[:])
	}
	for _, v := range slice {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint64(b[:], uint64(len(table)))
	h.Write(b[:])
	return fmt.Sprintf("%x", h.Sum(nil))
}

func worker(idx int) {
	rnd := rand.New(rand.NewSource(int64(idx)))
	own := make([]int, 1000)
	for i := range own {
		own[i] = i * idx
	}
	var garbage [][]byte
	for {
		for n := 0; n < 20; n++ {
			i := rnd.Intn(entries)
			if v, ok := table["key-"+strconv.Itoa(i)]; !ok || v != value(i) {
				report("goroutine %d: key-%d is %d (present %v)", idx, i, v, ok)
			}
			j := rnd.Intn(len(slice))
			if slice[j] != slot(j) {
				report("goroutine %d: slice[%d] is %x", idx, j, slice[j])
			}
		}
		k := rnd.Intn(len(own))
		if own[k] != k*idx {
			report("goroutine %d: own[%d] is %d", idx, k, own[k])
		}
		garbage = append(garbage, make([]byte, 4096))
		if len(garbage) > 16 {
			garbage = nil
		}
		atomic.AddInt64(&ticks[idx], 1)
		time.Sleep(20 * time.Millisecond)
	}
}

func verify(reference string) string {
	before := make([]int64, len(ticks))
	for i := range ticks {
		before[i] = atomic.LoadInt64(&ticks[i])
	}
	d := digest()
	if d != reference {
		return fmt.Sprintf("FAIL digest %s, expected %s", d, reference)
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := range ticks {
		for atomic.LoadInt64(&ticks[i]) <= before[i] {
			if time.Now().After(deadline) {
				return fmt.Sprintf("FAIL goroutine %d made no progress in 60 s", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	errMu.Lock()
	defer errMu.Unlock()
	if len(errs) > 0 {
		return fmt.Sprintf("FAIL %d errors; first: %s", len(errs), errs[0])
	}
	var sum int64
	for i := range ticks {
		sum += atomic.LoadInt64(&ticks[i])
	}
	return fmt.Sprintf("OK %s ticks=%d goroutines=%d", d, sum, runtime.NumGoroutine())
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: program ENTRIES GOROUTINES")
		os.Exit(2)
	}
	entries, _ = strconv.Atoi(os.Args[1])
	n, _ := strconv.Atoi(os.Args[2])

	table = make(map[string]uint64)
	for i := 0; i < entries; i++ {
		table["key-"+strconv.Itoa(i)] = value(i)
	}
	slice = make([]uint64, 4<<20)
	for i := range slice {
		slice[i] = slot(i)
	}
	reference := digest()
	ticks = make([]int64, n)
	for i := 0; i < n; i++ {
		go worker(i)
	}
	// The collector runs on its own as garbage piles up; once a second too.
	go func() {
		for {
			time.Sleep(time.Second)
			runtime.GC()
		}
	}()
	fmt.Println("READY", reference)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch line := strings.TrimSpace(in.Text()); line {
		case "verify":
			fmt.Println(verify(reference))
		case "quit":
			fmt.Println("BYE")
			os.Exit(0)
		default:
			fmt.Printf("FAIL unknown request '%s'\n", line)
		}
	}
}
