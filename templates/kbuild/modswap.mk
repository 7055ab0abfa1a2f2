# SPDX-License-Identifier: GPL-2.0
#
# modswap.mk: makes a kernel module hotswappable with modswap.
#
# A module pulls it in with one line at the END of its Kbuild file (or of
# the Makefile Kbuild reads); `modswap kbuild <module dir>` prints it, with
# the path of the modswap binary to use:
#
#	MODSWAP ?= /path/to/modswap
#	include /path/to/modswap/templates/kbuild/modswap.mk
#
# It does two jobs, depending on who reads it.
#
# 1. Read by Kbuild (`make -C <kdir> M=<dir>`, or an in-tree build), it
#    - checks that the kernel is Linux 6.12;
#    - compiles the module with <linux/modswap.h>: the kernel's own copy
#      when the kernel has one (the hotswap tree), else the toolkit's
#      (loader/include); every copy the build can see must be identical to
#      the toolkit's, the one definition of the section names and markers;
#    - links each generated replace handler, <module>_modswap.c, into its
#      module: the handler is compiled inside the unit that #includes it
#      (see codegen/README.md); a handler that no unit of its module
#      includes (and that is not an object of the module) stops the build;
#    - with MODSWAP_STEP=facts, parses every unit of the modules with
#      libclang into .<object>.modswap, a file that depends on the object:
#      Kbuild rebuilds an object when its source, a header it includes or
#      its flags change, and only then is that unit parsed again. The
#      targets below then analyse the whole module from these files.
#
# 2. Read by make in the module directory (`make -f Kbuild <target>`, or
#    `make <target>` when the file is the directory's Makefile), it adds the
#    targets (KDIR: the kernel build or headers directory, default
#    /lib/modules/$(uname -r)/build):
#
#	modswap-annotate                build, then classify every global and
#	                                mark the declarations (rewrites the
#	                                sources; prints the report)
#	modswap-handler OLD=<dir|rev>   build, then generate <module>_modswap.c
#	                                from the old version OLD (a directory or
#	                                a git revision) and this one
#	modswap-check [OLD=<dir|rev>]   build; fail when the markers, or the
#	                                handlers (against OLD), are stale
#	modswap-verify OLD=<old .ko>    build, then check that the new .ko can
#	                                replace OLD in place
#
#    MODULE=<name> picks one module of a directory that makes several.
#    Everything runs through Kbuild, so `make -j` parallelises it.

# This file's own location (before any other include changes MAKEFILE_LIST).
modswap-mk := $(abspath $(lastword $(MAKEFILE_LIST)))
modswap-root := $(abspath $(dir $(modswap-mk))/../..)
# The one definition of the markers, as the toolkit ships it.
modswap-include := $(modswap-root)/loader/include
modswap-h := $(modswap-include)/linux/modswap.h

MODSWAP ?= modswap
# The binary, as an absolute path (empty when it cannot be found).
modswap-find-bin = $(firstword $(shell command -v $(MODSWAP) 2>/dev/null))

ifneq ($(KERNELRELEASE),)
# ===========================================================================
# Read by Kbuild
# ===========================================================================

modswap-kdir := $(abspath $(objtree))
modswap-kbuild-file := $(or $(wildcard $(src)/Kbuild),$(src)/Makefile)

ifneq ($(VERSION).$(PATCHLEVEL),6.12)
$(error modswap: $(modswap-kdir) is Linux $(KERNELRELEASE), but modswap supports \
Linux 6.12 only. Build against 6.12: KDIR=/usr/src/linux-headers-6.12.117+deb12-amd64 \
(Debian's headers), or the hotswap tree `cargo xtask kernel` builds)
endif

ifeq ($(wildcard $(modswap-h)),)
$(error modswap: $(modswap-h) is missing: $(modswap-mk) must stay in the modswap \
checkout it came from (templates/kbuild/), next to loader/include)
endif

# Every <linux/modswap.h> this build can see must be the toolkit's.
modswap-kernel-h := $(wildcard $(srctree)/include/linux/modswap.h)
modswap-other-h := $(sort $(modswap-kernel-h) \
	$(foreach d,$(patsubst -I%,%,$(filter -I%,$(ccflags-y) $(subdir-ccflags-y) $(KCFLAGS))), \
		$(wildcard $(d)/linux/modswap.h)))
modswap-differ := $(strip $(foreach h,$(modswap-other-h), \
	$(if $(shell cmp -s $(h) $(modswap-h) && echo same),,$(h))))
modswap-fix-kernel-h := The kernel in $(modswap-kdir) was built with another version of \
the loader series: rebuild it from this checkout (cargo xtask kernel), or use the modswap \
it was built with.
modswap-fix-other-h := Remove that include path, or point it at $(modswap-include).
ifneq ($(modswap-differ),)
$(error modswap: $(modswap-differ) differs from the toolkit's $(modswap-h), the one \
definition of the section names and markers. $(if $(filter $(modswap-kernel-h),$(modswap-differ)),\
$(modswap-fix-kernel-h),$(modswap-fix-other-h)))
endif
ifeq ($(modswap-kernel-h),)
ccflags-y += -I$(modswap-include)
endif

# The modules of this directory and their objects (as Makefile.lib reads
# them), and the objects that have a C source.
modswap-modules := $(sort $(patsubst %.o,%,$(filter %.o,$(obj-m))))
modswap-objs-of = $(or $(strip $($(1)-y) $($(1)-objs) $($(1)-m)),$(1).o)
modswap-c-objs := $(sort $(foreach m,$(modswap-modules), \
	$(foreach o,$(call modswap-objs-of,$(m)), \
		$(if $(wildcard $(src)/$(o:.o=.c)),$(o)))))

# --- The generated replace handlers -----------------------------------------
# <module>_modswap.c is compiled inside the unit that ends with
# `#include "<module>_modswap.c"` (it needs that unit's static globals), or
# is an object of its own (a hand-written handler). Anything else would
# build a module that is silently not hotswappable.
modswap-handler-of = $(wildcard $(src)/$(1)_modswap.c)
modswap-includers-of = $(shell grep -lE \
	'^[[:space:]]*\#[[:space:]]*include[[:space:]]*"$(1)_modswap\.c"' \
	$(foreach o,$(call modswap-objs-of,$(1)),$(wildcard $(src)/$(o:.o=.c))) /dev/null)
define modswap-link-check
ifneq ($$(call modswap-handler-of,$(1)),)
ifeq ($$(filter $(1)_modswap.o,$$(call modswap-objs-of,$(1))),)
ifeq ($$(strip $$(call modswap-includers-of,$(1))),)
$$(error modswap: $(src)/$(1)_modswap.c is the replace handler of module $(1), \
but no C file of $(1) includes it, so $(1).ko would not be hotswappable. \
End the file its header names with `#include "$(1)_modswap.c"` \
(`make -f $(notdir $(modswap-kbuild-file)) modswap-handler OLD=...` adds that line))
endif
endif
endif
endef
$(foreach m,$(modswap-modules),$(eval $(call modswap-link-check,$(m))))

# --- Facts and checks (MODSWAP_STEP=facts|check) -----------------------------
modswap-facts-of = $(patsubst ./%,%,$(dir $(1))).$(notdir $(1)).modswap
modswap-facts := $(foreach o,$(modswap-c-objs),$(call modswap-facts-of,$(o)))
clean-files += $(modswap-facts)

ifneq ($(filter facts,$(MODSWAP_STEP)),)
modswap-bin := $(modswap-find-bin)
ifeq ($(modswap-bin),)
$(error modswap: cannot run `$(MODSWAP)`: set MODSWAP=<path to the modswap binary> \
(`modswap kbuild <dir>` prints the line for the Kbuild file), or put it on PATH)
endif
ifneq ($(shell $(modswap-bin) sections --check $(modswap-h) >/dev/null 2>&1 && echo same),same)
$(error modswap: $(modswap-bin) was not built with $(modswap-h): use the modswap built \
from $(modswap-root) (MODSWAP=...), or rebuild it there)
endif

quiet_cmd_modswap_unit = MODSWAP $(patsubst %.o,%.c,$<)
      cmd_modswap_unit = $(modswap-bin) annotate $(src) --kdir $(modswap-kdir) \
		--jobs 1 --parse-unit $(patsubst %.o,%.c,$<)

define modswap-facts-rule
$(obj)/$(call modswap-facts-of,$(1)): $(obj)/$(1) $(modswap-bin) FORCE
	$$(call if_changed,modswap_unit)
endef
$(foreach o,$(modswap-c-objs),$(eval $(call modswap-facts-rule,$(o))))

always-y += $(modswap-facts)

endif

else
# ===========================================================================
# Read by make in the module directory: the modswap-* targets
# ===========================================================================

modswap-bin := $(modswap-find-bin)
modswap-dir := $(abspath $(dir $(firstword $(MAKEFILE_LIST))))
modswap-file := $(notdir $(firstword $(MAKEFILE_LIST)))
KDIR ?= /lib/modules/$(shell uname -r)/build
modswap-kdir = $(abspath $(KDIR))
modswap-module = $(if $(MODULE),--module $(MODULE))

# The command that reruns a target, for messages.
modswap-again = make -C $(modswap-dir) -f $(modswap-file) KDIR=$(KDIR)

ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := modswap-help
endif

.PHONY: modswap-help modswap-annotate modswap-handler modswap-check modswap-verify \
	modswap-preflight modswap-need-old

modswap-help:
	@echo 'modswap targets (run in $(modswap-dir)):'
	@echo '  make -f $(modswap-file) KDIR=<kdir> modswap-annotate'
	@echo '  make -f $(modswap-file) KDIR=<kdir> modswap-handler OLD=<dir|git revision>'
	@echo '  make -f $(modswap-file) KDIR=<kdir> modswap-check [OLD=<dir|git revision>]'
	@echo '  make -f $(modswap-file) KDIR=<kdir> modswap-verify OLD=<old .ko>'
	@echo 'Build as usual: make -C <kdir> M=$(modswap-dir)'

modswap-preflight:
	@test -f $(modswap-kdir)/Makefile -a -f $(modswap-kdir)/.config || { \
	  echo >&2 "modswap: KDIR=$(KDIR) is not a configured kernel build or headers directory:" \
	    "pass KDIR=<Linux 6.12 build or headers directory>, e.g." \
	    "KDIR=/usr/src/linux-headers-6.12.117+deb12-amd64"; exit 2; }
	@test -n "$(modswap-bin)" || { \
	  echo >&2 "modswap: cannot run \`$(MODSWAP)': set MODSWAP=<path to the modswap binary>" \
	    "(\`modswap kbuild $(modswap-dir)' prints the line for the Kbuild file), or put it on PATH"; \
	  exit 2; }
	@$(modswap-bin) sections --check $(modswap-h) || { \
	  echo >&2 "modswap: use the modswap built from $(modswap-root) (MODSWAP=...)"; exit 2; }

modswap-need-old:
	@test -n "$(OLD)" || { \
	  echo >&2 "modswap: $(MAKECMDGOALS) needs OLD=...: the loaded version" \
	    "(modswap-handler, modswap-check: a directory or a git revision;" \
	    "modswap-verify: its .ko)"; exit 2; }

# $(call modswap-build,<extra make arguments>): the module's Kbuild build.
modswap-build = $(MAKE) -C $(modswap-kdir) M=$(modswap-dir) $(1) || { \
	echo >&2 "modswap: building the module in $(modswap-dir) against $(modswap-kdir) failed:" \
	  "fix what make reported above, then run \`$(modswap-again) $@' again"; exit 2; }

modswap-annotate: modswap-preflight
	@+$(call modswap-build,MODSWAP_STEP=facts)
	$(modswap-bin) annotate $(modswap-dir) --kdir $(modswap-kdir) --from-facts

# The replace handlers modswap-check compares against OLD: <module>_modswap.c
# (of MODULE only, when it is set).
modswap-handlers = $(if $(MODULE),$(MODULE)_modswap.c,\
	$(sort $(notdir $(wildcard $(modswap-dir)/*_modswap.c))))

# Each handler is generated again, from OLD and the current source, into a
# scratch copy of itself (so the regions reviewers filled in are kept, as
# modswap-handler keeps them); any difference means it is stale.
define modswap-check-handlers
	@t=$$(mktemp -d) && trap 'rm -rf "$$t"' EXIT && stale= && \
	for h in $(modswap-handlers); do \
	  test -f $(modswap-dir)/$$h || { echo >&2 "modswap: $(modswap-dir)/$$h is missing:" \
	    "generate it with \`$(modswap-again) modswap-handler OLD=$(OLD)'"; exit 1; }; \
	  cp $(modswap-dir)/$$h $$t/$$h && \
	  $(modswap-bin) handler --old $(OLD) --new $(modswap-dir) --kdir $(modswap-kdir) \
	    --module $${h%_modswap.c} -o $$t/$$h >/dev/null 2>$$t/.err || { \
	    sed "s|$$t/|$(modswap-dir)/|g" $$t/.err >&2; exit 2; }; \
	  cmp -s $(modswap-dir)/$$h $$t/$$h || stale="$$stale $$h"; \
	done; \
	test -n "$(modswap-handlers)" || { echo >&2 "modswap: $(modswap-dir) has no replace" \
	  "handler (<module>_modswap.c) to check against OLD=$(OLD): generate it with" \
	  "\`$(modswap-again) modswap-handler OLD=$(OLD)'"; exit 1; }; \
	test -z "$$stale" || { echo >&2 "modswap: the replace handler(s)$$stale are stale against" \
	  "the current source and OLD=$(OLD): run \`$(modswap-again) modswap-handler OLD=$(OLD)'," \
	  "then review what changed"; exit 1; }
	@echo 'modswap: $(modswap-dir): the replace handler(s) $(modswap-handlers) are up to date against $(OLD)'
endef

modswap-check: modswap-preflight
	@+$(call modswap-build,MODSWAP_STEP=facts)
	@$(modswap-bin) annotate $(modswap-dir) --kdir $(modswap-kdir) --check --from-facts \
		--fix-with '$(modswap-again) modswap-annotate'
	@echo 'modswap: $(modswap-dir): the markers are up to date'
ifneq ($(OLD),)
	$(modswap-check-handlers)
endif

modswap-handler: modswap-preflight modswap-need-old
	@+$(call modswap-build,)
	$(modswap-bin) handler --old $(OLD) --new $(modswap-dir) --kdir $(modswap-kdir) $(modswap-module)

modswap-verify: modswap-preflight modswap-need-old
	@+$(call modswap-build,)
	$(modswap-bin) verify $(OLD) $(modswap-dir)/$(if $(MODULE),$(MODULE).ko,$(notdir $(OLD)))
endif
