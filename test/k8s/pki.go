package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runPKI writes the certificates a local cluster needs (`pki cluster`) or a
// self-signed CA plus one serving certificate for a test's HTTPS server (`pki serving`).
func runPKI(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "pki: expected a subcommand: cluster | serving")
		return 2
	}
	fs := flag.NewFlagSet("pki "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (required)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated DNS names and IPs for the serving certificate")
	days := fs.Int("days", 365, "validity in days")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "pki: --dir is required")
		return 2
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "pki: %v\n", err)
		return 1
	}
	validity := time.Duration(*days) * 24 * time.Hour
	var err error
	switch args[0] {
	case "cluster":
		err = clusterPKI(*dir, splitList(*hosts), validity)
	case "serving":
		err = servingPKI(*dir, splitList(*hosts), validity)
	default:
		err = fmt.Errorf("unknown subcommand %q; expected cluster | serving", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pki: %v\n", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type leaf struct {
	name   string
	cn     string
	orgs   []string
	usages []x509.ExtKeyUsage
	hosts  []string
}

func clusterPKI(dir string, hosts []string, validity time.Duration) error {
	caCert, caKey, err := writeCA(dir, "ca", "qbasis-local-ca", validity)
	if err != nil {
		return err
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaves := []leaf{
		{name: "apiserver", cn: "kube-apiserver", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, hosts: hosts},
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, usages: client},
		{name: "kube-controller-manager", cn: "system:kube-controller-manager", usages: client},
		{name: "kube-scheduler", cn: "system:kube-scheduler", usages: client},
		// The real node (test/cluster/node.ts): the Node authorizer knows a kubelet by this name and group.
		{name: "kubelet", cn: "system:node:qbasis-node-0", orgs: []string{"system:nodes"}, usages: client},
		{name: "kube-proxy", cn: "system:kube-proxy", usages: client},
		// The API server's client certificate for logs, exec and port-forward on the kubelet.
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usages: client},
	}
	for _, l := range leaves {
		if err := writeLeaf(dir, l, caCert, caKey, validity); err != nil {
			return err
		}
	}
	// Service-account token signing key pair.
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644)
}

func servingPKI(dir string, hosts []string, validity time.Duration) error {
	caCert, caKey, err := writeCA(dir, "ca", "qbasis-test-ca", validity)
	if err != nil {
		return err
	}
	return writeLeaf(dir, leaf{name: "tls", cn: hosts[0], usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, hosts: hosts}, caCert, caKey, validity)
}

func writeCA(dir, name, cn string, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, writeKey(filepath.Join(dir, name+".key"), key)
}

func writeLeaf(dir string, l leaf, ca *x509.Certificate, caKey crypto.Signer, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  l.usages,
	}
	for _, h := range l.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, l.name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, l.name+".key"), key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writeKey(path string, key any) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
