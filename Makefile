.PHONY: run prod test services-up services-down services-status bench lint format audit docs screenshots

run:            ## install what is missing, start services and the app with demo data
	bin/run

prod:           ## the production layout on loopback: gunicorn, a worker per queue, one beat (docs/deploy.md)
	bin/prod

test:           ## lint, type-check and run the whole suite against real services
	bin/test

services-up:
	bin/services up

services-down:
	bin/services down

services-status:
	bin/services status

bench:          ## performance: this machine's limits and the product side by side (bench/run.py); QUICK=1 for a small run
	bin/services up
	.venv/bin/python bench/run.py $(if $(QUICK),--quick,)

audit:          ## dependency audit (pip-audit) of both locks; says plainly when it cannot run offline
	bin/audit

docs:           ## docs drawn from the code: docs/configuration.md (every setting) and the generated blocks of docs/*.md
	.venv/bin/python scripts/docs_generate.py

screenshots:    ## every page at 1280 and 390 px, light and dark, from demo data with problems in it (docs/screenshots.md)
	bin/services up
	.venv/bin/python scripts/screenshots.py

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
