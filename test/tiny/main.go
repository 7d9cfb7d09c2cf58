// qbasis-tiny: the real node's images without a registry. As /pause it is the pod sandbox
// (registry.k8s.io/pause cannot be pulled here); as `serve` a test app that says who answered.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	mode := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if mode != "pause" && len(args) > 0 {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "pause":
		pause()
	case "serve":
		os.Exit(serve(args))
	default:
		fmt.Fprintf(os.Stderr, "qbasis-tiny: unknown mode %q; expected pause or serve [port]\n", mode)
		os.Exit(2)
	}
}

// pause holds the pod's namespaces until TERM/INT and, as PID 1, reaps orphans.
func pause() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}

func serve(args []string) int {
	port := 8080
	if len(args) > 0 {
		p, err := strconv.Atoi(args[0])
		if err != nil || p < 1 || p > 65535 {
			fmt.Fprintf(os.Stderr, "qbasis-tiny serve: bad port %q; expected 1-65535\n", args[0])
			return 2
		}
		port = p
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
		fmt.Fprintf(w, "qbasis-tiny %s %s\n", host, local)
	})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}()
	fmt.Fprintf(os.Stderr, "qbasis-tiny: serving on :%d\n", port)
	if err := http.ListenAndServe(":"+strconv.Itoa(port), nil); err != nil {
		fmt.Fprintf(os.Stderr, "qbasis-tiny: %v\n", err)
		return 1
	}
	return 0
}
