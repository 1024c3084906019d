# web/: the dashboard.  Built with npm (lock file committed) into the build
# tree and installed under $(pkgdatadir)/web; vpxd serves it at /ui/.
WEB_SRC = web/package.json web/package-lock.json web/build.mjs \
	web/src/index.html web/src/app.js web/src/style.css
EXTRA_DIST += $(WEB_SRC)
webdir = $(pkgdatadir)/web

if HAVE_NPM
noinst_DATA = web/dist/index.html

# node_modules lives in the source tree, installed from the lock file once.
$(srcdir)/web/node_modules/.package-lock.json: $(srcdir)/web/package-lock.json
	cd $(srcdir)/web && $(NPM) ci --no-audit --no-fund --loglevel=error

web/dist/index.html: $(WEB_SRC) $(srcdir)/web/node_modules/.package-lock.json
	$(AM_V_GEN)$(MKDIR_P) web/dist && cd $(srcdir)/web && node build.mjs $(abs_builddir)/web/dist >/dev/null

install-data-local: web/dist/index.html
	$(MKDIR_P) $(DESTDIR)$(webdir)/vendor
	$(INSTALL_DATA) web/dist/*.html web/dist/*.js web/dist/*.css $(DESTDIR)$(webdir)/
	$(INSTALL_DATA) web/dist/vendor/* $(DESTDIR)$(webdir)/vendor/

uninstall-local:
	rm -rf $(DESTDIR)$(webdir)

clean-local:
	rm -rf web/dist
endif
