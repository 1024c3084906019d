# web/: the dashboard.  Built with npm (lock file committed) into the build
# tree and installed under $(pkgdatadir)/web; vpxd serves it at /ui/.
WEB_SRC = web/package.json web/package-lock.json web/build.mjs \
	web/src/index.html web/src/app.js web/src/style.css
EXTRA_DIST += $(WEB_SRC)

if HAVE_NPM
webdir = $(pkgdatadir)/web
nodist_web_DATA = web/dist/index.html web/dist/app.js web/dist/style.css
webvendordir = $(pkgdatadir)/web/vendor
nodist_webvendor_DATA = web/dist/vendor/chart.umd.js
CLEANFILES += $(nodist_web_DATA) $(nodist_webvendor_DATA) web/dist/.stamp

# node_modules lives in the source tree, installed from the lock file once.
$(srcdir)/web/node_modules/.package-lock.json: $(srcdir)/web/package-lock.json
	$(AM_V_GEN)cd $(srcdir)/web && $(NPM) ci --no-audit --no-fund --loglevel=error

web/dist/.stamp: $(WEB_SRC) $(srcdir)/web/node_modules/.package-lock.json
	$(AM_V_GEN)$(MKDIR_P) web/dist && cd $(srcdir)/web && node build.mjs $(abs_builddir)/web/dist >/dev/null && touch $(abs_builddir)/web/dist/.stamp
$(nodist_web_DATA) $(nodist_webvendor_DATA): web/dist/.stamp
endif
