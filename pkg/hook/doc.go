// Package hook is what a backup or restore hook means, apart from where it
// runs (pkg/controller/hookrun): the summary its templates see, rendering a
// handler over it, whether a post hook runs (executionPolicy), and running
// an HTTP or TCP handler (`stow run-hook`). docs/hooks.md describes the
// rules.
package hook
