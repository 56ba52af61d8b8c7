"""The live views of a drill: one view model (model.py) fed by the observer and the runner,
rendered by the browser page (web.py, static/) and the terminal (terminal.py)."""
