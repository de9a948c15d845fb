.PHONY: run test services-up services-down services-status bench lint format

run:            ## install what is missing, start services and the app with demo data
	bin/run

test:           ## lint, type-check and run the whole suite against real services
	bin/test

services-up:
	bin/services up

services-down:
	bin/services down

services-status:
	bin/services status

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
