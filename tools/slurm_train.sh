#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU (mmdet's slurm_train.sh form):
#   [GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# Preemption (docs/cluster.md): train.py saves a checkpoint and exits with
# status 75 on SIGTERM and on PREEMPT_SIGNAL (e.g. USR1, sent by
# `#SBATCH --signal=USR1@90`). With REQUEUE=1, inside a batch job submitted
# with `sbatch --requeue`, the run starts with --resume (from the work dir's
# last checkpoint, if any) and a preempted run is put back in the queue with
# `scontrol requeue $SLURM_JOB_ID`.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
REQUEUE=${REQUEUE:-0}
PREEMPT_SIGNAL=${PREEMPT_SIGNAL:-}
PREEMPTED=75  # train.py's exit status after a preemption checkpoint
TOOLS="$(dirname "${BASH_SOURCE[0]}")"

TRAIN_ARGS=()
if [ -n "$PREEMPT_SIGNAL" ]; then
    TRAIN_ARGS+=(--preempt-signal "$PREEMPT_SIGNAL")
fi
if [ "$REQUEUE" = 1 ]; then
    if [ -z "${SLURM_JOB_ID:-}" ]; then
        echo "error: REQUEUE=1 requeues the batch job that runs this script; SLURM_JOB_ID is not set (submit it with sbatch --requeue)" >&2
        exit 2
    fi
    TRAIN_ARGS+=(--resume)  # given before "$@": an explicit --resume CKPT wins
    # Slurm signals this shell too: outlive it, to requeue after the save.
    trap 'echo "slurm_train.sh: SIGTERM; waiting for the checkpoint" >&2' TERM
fi

status=0
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm \
    ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} "$@" || status=$?
if [ "$REQUEUE" = 1 ] && [ "$status" = "$PREEMPTED" ]; then
    echo "slurm_train.sh: training was preempted; requeueing job $SLURM_JOB_ID" >&2
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
