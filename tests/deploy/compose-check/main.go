// compose-check validates a Compose file the way `docker compose config` does, without a Docker
// engine: it loads the file with compose-go (the loader inside Docker Compose), which checks it
// against the Compose Specification schema, interpolates variables, and checks that every
// reference (depends_on, networks, volumes, configs, secrets) names something defined. Then it
// checks what the loader leaves to the engine: that every bind-mounted file or folder, build
// context and Dockerfile exists. It prints the resolved project (as `docker compose config`
// would) with -print, and exits 1 with the loader's message on the first problem.
//
//	compose-check [-print] deploy/compose.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	printProject := flag.Bool("print", false, "print the resolved project")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-print] FILE")
		os.Exit(64)
	}
	file := flag.Arg(0)

	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(file, err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(file, err)
	}

	var problems []string
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := project.Services[name]
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					problems = append(problems, fmt.Sprintf("service %s: bind mount source %s does not exist", name, v.Source))
				}
			}
		}
		if svc.Build != nil {
			if _, err := os.Stat(svc.Build.Context); err != nil {
				problems = append(problems, fmt.Sprintf("service %s: build context %s does not exist", name, svc.Build.Context))
			}
			dockerfile := svc.Build.Dockerfile
			if dockerfile != "" && !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(svc.Build.Context, dockerfile)
			}
			if dockerfile != "" {
				if _, err := os.Stat(dockerfile); err != nil {
					problems = append(problems, fmt.Sprintf("service %s: Dockerfile %s does not exist", name, dockerfile))
				}
			}
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", file, p)
		}
		os.Exit(1)
	}

	if *printProject {
		out, err := project.MarshalYAML()
		if err != nil {
			fail(file, err)
		}
		os.Stdout.Write(out)
	}
	fmt.Fprintf(os.Stderr, "%s: valid (%d services: %v)\n", file, len(names), names)
}

func fail(file string, err error) {
	fmt.Fprintf(os.Stderr, "%s: invalid: %v\n", file, err)
	os.Exit(1)
}
