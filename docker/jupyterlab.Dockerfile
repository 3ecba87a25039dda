# JupyterLab with migrationkit installed in editable mode, for docker-compose.yml.
# The build context is the repository root; docker-compose.yml bind-mounts the clone
# over /workspace at run time, so the editable install runs the learner's own files.
FROM python:3.11-slim

# The container runs as the learner's uid (see docker-compose.yml), which has no
# home directory in the image: Jupyter keeps its runtime files in HOME instead.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp/home

WORKDIR /workspace
COPY . .
RUN pip install -e ".[notebooks,metrics,test]" \
    && mkdir -p "$HOME" \
    && chmod 1777 "$HOME"

# JupyterLab, and migrationkit's Prometheus metrics (docker-compose.yml sets the port).
EXPOSE 8888 9464
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/workspace/notebooks"]
