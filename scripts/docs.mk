# Documentation (DocC), included by the top-level Makefile.
#
#   make docs        build the documentation archive into .build/docs/ThreadPoolKit.doccarchive
#   make docs-check  the same, failing on any DocC warning (a broken symbol link, an undocumented
#                    parameter, ...)
#
# The `docc` binary that comes with the Swift toolchain is used directly: the package gains no
# dependency (no swift-docc-plugin). The module's symbol graph is emitted by the compiler while
# building the ThreadPoolKit target alone, in a scratch path of its own, so that this neither waits
# for nor invalidates the `swift build` / `swift test` products in .build, and neither the tests nor
# the examples need to compile for the documentation to build.
#
# To read the result: `docc preview Sources/ThreadPoolKit/ThreadPoolKit.docc
# --additional-symbol-graph-dir .build/docs/scratch/symbol-graphs`, or serve
# .build/docs/ThreadPoolKit.doccarchive over HTTP and open /documentation/threadpoolkit.

SWIFT ?= swift
DOCC ?= $(or $(shell command -v docc 2>/dev/null),$(shell xcrun --find docc 2>/dev/null),docc)

DOCS_DIR := .build/docs
DOCS_SCRATCH := $(DOCS_DIR)/scratch
DOCS_SYMBOL_GRAPHS := $(CURDIR)/$(DOCS_SCRATCH)/symbol-graphs
DOCS_CATALOG := Sources/ThreadPoolKit/ThreadPoolKit.docc
DOCS_ARCHIVE := $(DOCS_DIR)/ThreadPoolKit.doccarchive
DOCS_FLAGS := --additional-symbol-graph-dir $(DOCS_SYMBOL_GRAPHS) \
	--output-path $(DOCS_ARCHIVE) \
	--fallback-display-name ThreadPoolKit \
	--fallback-bundle-identifier org.threadpoolkit.ThreadPoolKit

.PHONY: docs docs-check docs-symbol-graphs

# The compiler writes the symbol graph whenever it rebuilds the module; if the graph has gone
# missing while the module is up to date, start the scratch path afresh so that it is written again.
docs-symbol-graphs:
	@test -f $(DOCS_SYMBOL_GRAPHS)/ThreadPoolKit.symbols.json || rm -rf $(DOCS_SCRATCH)
	$(SWIFT) build --scratch-path $(DOCS_SCRATCH) --target ThreadPoolKit \
	  -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc $(DOCS_SYMBOL_GRAPHS)

docs: docs-symbol-graphs
	$(DOCC) convert $(DOCS_CATALOG) $(DOCS_FLAGS)
	@echo "Documentation: $(DOCS_ARCHIVE) (serve it over HTTP and open /documentation/threadpoolkit)"

docs-check: docs-symbol-graphs
	$(DOCC) convert $(DOCS_CATALOG) $(DOCS_FLAGS) --warnings-as-errors
