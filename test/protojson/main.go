// protojson-ref: Go's protobuf (protodesc + dynamicpb + encoding/protojson) as the reference the gateway's
// JSON codec is measured against, and bufbuild/protocompile as the reference for its .proto compiler.
// One JSON request per stdin line, one JSON answer per stdout line, in order:
//
//	{"op":"toJson","set":"<b64 FileDescriptorSet>","type":"pkg.Msg","binary":"<b64>","emitUnpopulated":false,"emitDefaultValues":false}
//	  -> {"json":"<protojson text>"} | {"error":"..."}
//	{"op":"fromJson","set":"...","type":"pkg.Msg","json":"<text>","discardUnknown":false}
//	  -> {"binary":"<b64, deterministic>"} | {"error":"..."}
//	{"op":"compile","files":{"a.proto":"<source>",...},"compile":["a.proto"]}
//	  -> {"set":"<b64 FileDescriptorSet of the compiled files, no source info>"} | {"error":"..."}
//
// "set" is cached by its text, so a test sends the same set many times at no cost.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

type request struct {
	Op              string            `json:"op"`
	Set             string            `json:"set"`
	Type            string            `json:"type"`
	Binary          string            `json:"binary"`
	JSON            string            `json:"json"`
	EmitUnpopulated bool              `json:"emitUnpopulated"`
	EmitDefaults    bool              `json:"emitDefaultValues"`
	DiscardUnknown  bool              `json:"discardUnknown"`
	Files           map[string]string `json:"files"`
	Compile         []string          `json:"compile"`
}

type response struct {
	JSON   *string `json:"json,omitempty"`
	Binary *string `json:"binary,omitempty"`
	Set    *string `json:"set,omitempty"`
	Error  string  `json:"error,omitempty"`
}

type schema struct {
	files *protoregistry.Files
	types *protoregistry.Types
}

var schemas = map[string]*schema{}

func loadSet(b64 string) (*schema, error) {
	if s, ok := schemas[b64]; ok {
		return s, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("set: %v", err)
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &fds); err != nil {
		return nil, fmt.Errorf("set: %v", err)
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		return nil, fmt.Errorf("set: %v", err)
	}
	types := new(protoregistry.Types)
	var rerr error
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		rerr = registerTypes(types, fd.Messages(), fd.Enums(), fd.Extensions())
		return rerr == nil
	})
	if rerr != nil {
		return nil, rerr
	}
	s := &schema{files: files, types: types}
	schemas[b64] = s
	return s, nil
}

// registerTypes makes every message, enum and extension resolvable (Any's type URLs, extensions in JSON).
func registerTypes(types *protoregistry.Types, msgs protoreflect.MessageDescriptors, enums protoreflect.EnumDescriptors, exts protoreflect.ExtensionDescriptors) error {
	for i := 0; i < enums.Len(); i++ {
		if err := types.RegisterEnum(dynamicpb.NewEnumType(enums.Get(i))); err != nil {
			return err
		}
	}
	for i := 0; i < exts.Len(); i++ {
		if err := types.RegisterExtension(dynamicpb.NewExtensionType(exts.Get(i))); err != nil {
			return err
		}
	}
	for i := 0; i < msgs.Len(); i++ {
		m := msgs.Get(i)
		if err := types.RegisterMessage(dynamicpb.NewMessageType(m)); err != nil {
			return err
		}
		if err := registerTypes(types, m.Messages(), m.Enums(), m.Extensions()); err != nil {
			return err
		}
	}
	return nil
}

func newMessage(s *schema, name string) (*dynamicpb.Message, error) {
	d, err := s.files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("type %s: %v", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("type %s is not a message", name)
	}
	return dynamicpb.NewMessage(md), nil
}

// schemaMessage is the request's schema and an empty message of its type.
func schemaMessage(req *request) (*schema, *dynamicpb.Message, error) {
	s, err := loadSet(req.Set)
	if err != nil {
		return nil, nil, err
	}
	m, err := newMessage(s, req.Type)
	return s, m, err
}

func handle(req *request) response {
	switch req.Op {
	case "toJson":
		s, m, err := schemaMessage(req)
		if err != nil {
			return response{Error: err.Error()}
		}
		raw, err := base64.StdEncoding.DecodeString(req.Binary)
		if err != nil {
			return response{Error: "binary: " + err.Error()}
		}
		if err := (proto.UnmarshalOptions{Resolver: s.types}).Unmarshal(raw, m); err != nil {
			return response{Error: "binary: " + err.Error()}
		}
		out, err := protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: req.EmitUnpopulated, EmitDefaultValues: req.EmitDefaults, Resolver: s.types}.Marshal(m)
		if err != nil {
			return response{Error: err.Error()}
		}
		text := string(out)
		return response{JSON: &text}
	case "fromJson":
		s, m, err := schemaMessage(req)
		if err != nil {
			return response{Error: err.Error()}
		}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: req.DiscardUnknown, Resolver: s.types}).Unmarshal([]byte(req.JSON), m); err != nil {
			return response{Error: err.Error()}
		}
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return response{Error: err.Error()}
		}
		b := base64.StdEncoding.EncodeToString(out)
		return response{Binary: &b}
	case "compile":
		return compile(req)
	}
	return response{Error: fmt.Sprintf("unknown op %q", req.Op)}
}

// compile runs protocompile over the given sources; the well-known types come from protocompile itself.
func compile(req *request) response {
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(req.Files),
		}),
		SourceInfoMode: protocompile.SourceInfoNone,
	}
	res, err := c.Compile(context.Background(), req.Compile...)
	if err != nil {
		return response{Error: err.Error()}
	}
	var fds descriptorpb.FileDescriptorSet
	for _, f := range res {
		fds.File = append(fds.File, protodesc.ToFileDescriptorProto(f))
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&fds)
	if err != nil {
		return response{Error: err.Error()}
	}
	b := base64.StdEncoding.EncodeToString(out)
	return response{Set: &b}
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			var resp response
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				resp = response{Error: "request: " + jerr.Error()}
			} else {
				resp = handle(&req)
			}
			if eerr := enc.Encode(resp); eerr != nil {
				fmt.Fprintln(os.Stderr, eerr)
				os.Exit(1)
			}
			if in.Buffered() == 0 {
				out.Flush()
			}
		}
		if err == io.EOF {
			out.Flush()
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
