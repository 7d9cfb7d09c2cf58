// k8s-tools: one multi-call binary for the control plane and the real node's kubelet and
// kube-proxy, so the big Kubernetes dependency graph is compiled and linked once instead of seven times.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var tools = map[string]func(args []string) int{
	"etcd":           runEtcd,
	"kube-apiserver": func([]string) int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func([]string) int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kube-scheduler": func([]string) int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":        func([]string) int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-proxy":     func([]string) int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl":        runKubectl,
	"pki":            runPKI,
}

func runKubectl([]string) int {
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
	return 0
}

func main() {
	// Called as a symlink (kubectl -> k8s-tools) or as `k8s-tools <tool> args...`.
	name := filepath.Base(os.Args[0])
	if _, ok := tools[name]; !ok {
		if len(os.Args) < 2 {
			fmt.Fprintf(os.Stderr, "k8s-tools: expected a tool name as first argument, one of: %s\n", names())
			os.Exit(2)
		}
		name = os.Args[1]
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	run, ok := tools[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "k8s-tools: unknown tool %q; expected one of: %s\n", name, names())
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:]))
}

func names() string {
	out := make([]string, 0, len(tools))
	for n := range tools {
		out = append(out, n)
	}
	return strings.Join(out, ", ")
}
