# Promela models of the pool's lock-free protocols (Tests/Models), checked with spin; included by the
# top-level Makefile.
#
#   make model-check   every model and every variant: the models as the code is must check clean
#                      (0 errors), and every mutation (a known bug put back with -D) must fail
#   make model-<name>  one variant, e.g. make model-wake-tso
#
# Each variant runs in its own scratch directory, $(BIN)/models/<name>/, which keeps spin's pan.*
# files, pan's output (pan.log) and, when it found an error, its trail. To replay a counterexample
# (add -p for every step):
#   cd bin/models/<name> && spin -t -k <model>.trail <the variant's -D flags> ../../../Tests/Models/<model>
# Needs spin (apt-get install spin) and a C compiler.

SPIN ?= spin
MODEL_CC ?= gcc
MODELS_SRC := $(CURDIR)/Tests/Models
MODELS_BIN := $(BIN)/models
MODEL_DEPTH ?= 100000

# Per variant: <name>.model (the file), <name>.spin (spin -a flags), <name>.cc (pan's compile flags),
# <name>.expect (pass: 0 errors; fail: at least 1).
#
# inbox.pml: sequentially consistent; spin's partial order reduction on.
MODEL_INBOX_CC := -DSAFETY
inbox.model := inbox.pml
inbox.spin := -DNPROD=2 -DPUSHES=3
inbox.expect := pass
inbox-3-producers.model := inbox.pml
inbox-3-producers.spin := -DNPROD=3 -DPUSHES=1
inbox.cc := $(MODEL_INBOX_CC)
inbox-3-producers.cc := $(MODEL_INBOX_CC)
inbox-3-producers.expect := pass
INBOX_MUTATIONS := PUBLISH_BEFORE_WRITE RELEASE_BEFORE_COPY POP_TRUSTS_TAIL OFF_FLAG

# wake.pml: sequentially consistent, and with -DTSO a store buffer per thread. No partial order
# reduction: the store buffers' drains and the final timeout are left to a full search.
MODEL_WAKE_CC := -DSAFETY -DNOREDUCE
wake.model := wake.pml
wake.spin :=
wake.cc := $(MODEL_WAKE_CC)
wake.expect := pass
wake-tso.model := wake.pml
wake-tso.spin := -DTSO
wake-tso.cc := $(MODEL_WAKE_CC)
wake-tso.expect := pass
WAKE_MUTATIONS := SPIN_SNAPSHOT_TAIL NO_PARK_RECHECK NO_BATCH_WAKE
WAKE_TSO_MUTATIONS := IDLE_RELAXED SPINNING_RELAXED SPIN_SNAPSHOT_TAIL

# The mutations: inbox-mut-<M>, wake-mut-<M> and wake-tso-mut-<M>, each -DMUT_<M> over its base.
model_lower = $(shell echo '$(1)' | tr 'A-Z_' 'a-z-')
define model_mutation
$(1)-mut-$(call model_lower,$(2)).model := $$($(1).model)
$(1)-mut-$(call model_lower,$(2)).spin := $$($(1).spin) -DMUT_$(2)
$(1)-mut-$(call model_lower,$(2)).cc := $$($(1).cc)
$(1)-mut-$(call model_lower,$(2)).expect := fail
MODEL_VARIANTS += $(1)-mut-$(call model_lower,$(2))
endef

MODEL_VARIANTS := inbox inbox-3-producers wake wake-tso
$(foreach m,$(INBOX_MUTATIONS),$(eval $(call model_mutation,inbox,$(m))))
$(foreach m,$(WAKE_MUTATIONS),$(eval $(call model_mutation,wake,$(m))))
$(foreach m,$(WAKE_TSO_MUTATIONS),$(eval $(call model_mutation,wake-tso,$(m))))

.PHONY: model-check $(addprefix model-,$(MODEL_VARIANTS))

model-check: $(addprefix model-,$(MODEL_VARIANTS))
	@echo "model-check: $(words $(MODEL_VARIANTS)) variants as expected (the models clean, every mutation caught)"

# spin -a writes pan.c and friends into the current directory; pan writes <model>.trail there.
$(addprefix model-,$(MODEL_VARIANTS)): model-%:
	@command -v $(SPIN) >/dev/null || { echo "model-check: $(SPIN) not found (apt-get install spin)"; exit 1; }
	@rm -rf $(MODELS_BIN)/$* && mkdir -p $(MODELS_BIN)/$*
	@cd $(MODELS_BIN)/$* && \
	  $(SPIN) -a $($*.spin) $(MODELS_SRC)/$($*.model) > spin.log 2>&1 || { cat spin.log; exit 1; }; \
	  $(MODEL_CC) -O2 -w $($*.cc) -o pan pan.c > cc.log 2>&1 || { cat cc.log; exit 1; }; \
	  ./pan -m$(MODEL_DEPTH) > pan.log 2>&1; \
	  states=$$(grep -m1 'states, stored' pan.log | sed 's/^ *//'); \
	  errors=$$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.log | head -1); \
	  what=$$(grep -m1 '^pan:[0-9]*:' pan.log); \
	  printf '%-34s %-28s errors: %s%s\n' "$*" "$$states" "$${errors:-?}" "$${what:+  ($$what)}"; \
	  if [ -z "$$errors" ] || [ -z "$$states" ]; then cat pan.log; echo "$*: pan did not finish"; exit 1; fi; \
	  if grep -q 'max search depth too small' pan.log; then echo "$*: search truncated (raise MODEL_DEPTH)"; exit 1; fi; \
	  if [ "$($*.expect)" = pass ] && [ "$$errors" -ne 0 ]; then \
	    echo "$*: FAILED, expected no error; replay: cd $(MODELS_BIN)/$* && $(SPIN) -t -k $($*.model).trail $($*.spin) $(MODELS_SRC)/$($*.model)"; exit 1; \
	  fi; \
	  if [ "$($*.expect)" = fail ] && [ "$$errors" -eq 0 ]; then \
	    echo "$*: FAILED, the mutation went unnoticed"; exit 1; \
	  fi
