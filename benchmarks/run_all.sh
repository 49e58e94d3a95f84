#!/usr/bin/env bash
# Every figure in docs/results.md, one command each, in the order they were measured.
# Each script, run with --record, appends its rows to benchmarks/results/<table>.json and
# writes its pictures into docs/img/ (without it a script prints only); afterwards
# `python benchmarks/make_results.py` renders the tables of docs/results.md.
# (The speed figures of docs/performance.md come from benchmarks/perf/, listed there.)
set -x
B=benchmarks
python $B/experiments/table1.py --record --dataset mnist --units 255 --arch small --epochs 10 --mode joint
python $B/experiments/table1.py --record --dataset mnist --units 1 --arch small --epochs 10 --mode joint
python $B/experiments/table1.py --record --dataset fashion-mnist --units 255 --arch small --epochs 10 --mode joint
python $B/experiments/table1.py --record --dataset fashion-mnist --units 1 --arch small --epochs 10 --mode joint
# The dense preset with PCD-1 negatives (N = 1) at three learning rates.
for lr in 0.03 0.01 0.003; do
  python $B/experiments/table1.py --record --dataset mnist --units 1 --arch small --epochs 10 --mode joint --negatives pcd --lr $lr
done
python $B/experiments/table1.py --record --dataset fashion-mnist --units 1 --arch small --epochs 10 --mode joint --negatives pcd --lr 0.01
for e in 10 30; do
  python $B/experiments/table1.py --record --dataset mnist --units 1 --arch small --epochs $e --mode joint --negatives pcd --lr 0.01 --lr-decay linear
done
# The paper's conv network (one thread each; two of these were run side by side).
export OMP_NUM_THREADS=1
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --epochs 6 --keep 10 --device cpu --out runs/t1-conv-mnist-N255
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N255 --epochs 6,2
rbm train --out runs/t1-conv-mnist-N255 --resume --epochs 20
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N255 --epochs 20
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --epochs 2 --keep 10 --device cpu --out runs/t1-conv-mnist-N255-e2
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N255-e2 --epochs 2
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --epochs 4 --lr 0.01 --keep 10 --device cpu --out runs/t1-conv-mnist-N255-lr01
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N255-lr01 --epochs 4
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --visible-units 1 --hidden-units 1 --negatives pcd --lr 0.01 --epochs 3 --keep 10 --device cpu --out runs/t1-conv-mnist-N1-pcd
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N1-pcd --epochs 3
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --epochs 3 --lr-decay linear --keep 10 --device cpu --out runs/t1-conv-mnist-N255-decay
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N255-decay --epochs 3
unset OMP_NUM_THREADS  # this one ran alone, at two threads
rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch paper-classify --visible-units 1 --hidden-units 1 --epochs 2 --keep 10 --device cpu --out runs/t1-conv-mnist-N1-e2
python $B/experiments/learning_curve.py --record runs/t1-conv-mnist-N1-e2 --epochs 2
rbm train --recipe paper --visible-bias-init zero --dataset fashion-mnist --arch paper-classify --visible-units 1 --hidden-units 1 --epochs 2 --keep 10 --device cpu --out runs/t1-conv-fashion-N1-e2
python $B/experiments/learning_curve.py --record runs/t1-conv-fashion-N1-e2 --epochs 2
export OMP_NUM_THREADS=1
rbm train --recipe paper --visible-bias-init zero --dataset fashion-mnist --arch paper-classify --epochs 2 --keep 10 --device cpu --out runs/t1-conv-fashion-N255-e2
python $B/experiments/learning_curve.py --record runs/t1-conv-fashion-N255-e2 --epochs 2
unset OMP_NUM_THREADS
python $B/experiments/loglik.py --record --negatives meanfield --epochs 10
python $B/experiments/loglik.py --record --negatives pcd --epochs 10
python $B/experiments/loglik.py --record --negatives pcd --epochs 10 --lr 0.003
python $B/experiments/loglik.py --record --negatives pcd --epochs 30 --lr 0.01
python $B/experiments/loglik.py --record --negatives pcd --epochs 100 --lr 0.01
python $B/experiments/loglik.py --record --negatives pcd --epochs 30 --lr 0.01 --lr-decay linear
python $B/experiments/loglik.py --record --negatives pcd --epochs 60 --lr 0.01 --lr-decay linear
python $B/experiments/loglik.py --record --negatives pcd --epochs 100 --lr 0.01 --lr-decay linear
python $B/experiments/loglik.py --record --negatives pcd --epochs 200 --lr 0.01 --lr-decay linear
python $B/experiments/ais_check.py --record "$(ls -td runs/loglik-pcd-* | head -1)/model.safetensors" --runs 500  # the run just made
python $B/experiments/loglik.py --record --negatives pcd --epochs 300 --lr 0.01 --lr-decay linear
python $B/experiments/ais_check.py --record "$(ls -td runs/loglik-pcd-* | head -1)/model.safetensors" --runs 500
python $B/experiments/peers.py --record --dataset mnist
python $B/experiments/peers.py --record --dataset fashion-mnist
# Ablations: MNIST, 20k training images for the RBM and the SVM, 5 epochs, one change a row.
A="--dataset mnist --epochs 5 --limit 20000 --svm-limit-train 20000 --table ablations"
python $B/experiments/table1.py --record $A --arch small --tag base
python $B/experiments/table1.py --record $A --arch small --units 1 --tag N=1
python $B/experiments/table1.py --record $A --arch small --lr 0.01 --tag lr=0.01
python $B/experiments/table1.py --record $A --arch small --lr 0.003 --tag lr=0.003
python $B/experiments/table1.py --record $A --arch small --k 0.05 --tag k=0.05
python $B/experiments/table1.py --record $A --arch small --activation relu --tag relu
python $B/experiments/table1.py --record $A --arch small --negatives cd --tag cd-1
python $B/experiments/table1.py --record $A --arch small --negatives pcd --tag pcd-1
python $B/experiments/table1.py --record $A --arch small-dbn --mode joint --tag dbn-joint
python $B/experiments/table1.py --record $A --arch small-dbn --mode detached --tag dbn-detached
python $B/experiments/table1.py --record $A --arch small-dbn --mode greedy --tag dbn-greedy
# FID of samples (2,000 MNIST / 1,000 Fashion-MNIST images per side), with the real-vs-real floor.
T="--arch small --negatives pcd --lr 0.01 --lr-decay linear --device cpu"
for N in 1 255; do
  rbm train --recipe paper --visible-bias-init zero --dataset mnist $T --visible-units $N --hidden-units $N --epochs 60 --out runs/fid-mnist-N$N
  rbm train --recipe paper --visible-bias-init zero --dataset fashion-mnist $T --visible-units $N --hidden-units $N --epochs 30 --out runs/fid-fashion-N$N
done
rbm train --recipe paper --visible-bias-init zero --dataset mnist $T --visible-units 255 --hidden-units 1 --epochs 60 --out runs/fid-mnist-N255v1h
python $B/experiments/fid_table.py --record --floor --dataset mnist --n 2000
for r in fid-mnist-N1 fid-mnist-N255 fid-mnist-N255v1h; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 2000; done
python $B/experiments/fid_table.py --record --floor --dataset fashion-mnist --n 1000
for r in fid-fashion-N1 fid-fashion-N255; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 1000; done
# The 10,000-sample FID of the MNIST models above (≈ 1 h each at two threads).
for r in fid-mnist-N1 fid-mnist-N255; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 10000; done
python $B/experiments/fid_table.py --record --floor --dataset mnist --n 10000
# ... and of the Fashion-MNIST models (≈ 1.5 h for the three at two threads).
for r in fid-fashion-N255 fid-fashion-N1; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 10000; done
python $B/experiments/fid_table.py --record --floor --dataset fashion-mnist --n 10000
# Recipe screening on the training set (validation error of an SVM fit on 10k images; test never read).
C="--dataset mnist --arch paper-classify --keep 10 --device cpu"
rbm train --recipe paper --visible-bias-init zero $C --hidden-units 1 --epochs 2 --out runs/scr-h1                                   # binary hidden units
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --sparsity 0.003 --sparsity-target 0.1 --epochs 2 --out runs/scr-sp003
OMP_NUM_THREADS=1 rbm train --resume --out runs/scr-sp003 --epochs 4
for r in scr-sp003 scr-h1; do python $B/experiments/screen.py --record runs/$r; done
python $B/experiments/screen.py --record runs/t1-conv-mnist-N255-e2 --epochs 1
python $B/experiments/screen.py --record runs/t1-conv-mnist-N255-e2 --epochs 2 --kernels linear,nystroem,rbf  # its linear row is current; its Nyström row (C grid 0.3..3) is marked superseded
python $B/experiments/screen.py --record runs/t1-conv-mnist-N255-e2 --epochs 2 --kernels rbf,nystroem  # RBF with libsvm's own iteration limit, Nyström C grid 1..30
# Architecture and weight decay (one thread each; screened after 2 epochs like the baseline).
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch conv:64,conv:128 --epochs 2 --keep 10 --device cpu --out runs/scr-2layer
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --weight-decay 0.03 --epochs 2 --out runs/scr-wd003
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch conv:64,conv:128,conv:256,conv:512 --epochs 2 --keep 10 --device cpu --out runs/scr-4layer
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero --dataset mnist --arch conv:64,conv:128,conv:512 --epochs 2 --keep 10 --device cpu --out runs/scr-wide512
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --seed 1 --epochs 2 --out runs/scr-seed1                     # the baseline again: seed noise
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --lr 0.1 --epochs 2 --out runs/scr-lr01                        # lr 0.1 (not the lr 0.01 run of Table 1)
OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --batch-size 64 --epochs 2 --out runs/scr-b64
for r in scr-2layer scr-wd003 scr-4layer scr-wide512 scr-seed1 scr-lr01 scr-b64; do OMP_NUM_THREADS=1 python $B/experiments/screen.py --record runs/$r; done
# Longer runs of weight decay and of the baseline (seed 1): epochs 3-6 (one thread each, two at once).
OMP_NUM_THREADS=1 rbm train --out runs/scr-wd003 --resume --epochs 6 --device cpu
OMP_NUM_THREADS=1 rbm train --out runs/scr-seed1 --resume --epochs 6 --device cpu
for r in scr-wd003 scr-seed1; do OMP_NUM_THREADS=1 python $B/experiments/screen.py --record runs/$r --epochs 3,4,5,6; done
# Lower layers' features next to the top layer's (layer 0 = first hidden layer; pK = K×K average pooling).
OMP_NUM_THREADS=1 python $B/experiments/screen.py --record runs/t1-conv-mnist-N255-e2 --epochs 2 --features "top;1;1+top;0p2+1+top;0p4+1p2+top;0p2"
# (the command above wrote the rows of its first three sets; this one measures the other three)
OMP_NUM_THREADS=1 python $B/experiments/screen.py --record runs/t1-conv-mnist-N255-e2 --epochs 2 --features "0p2+1+top;0p4+1p2+top;0p2"
# Exact RBF-kernel SVM on the full split (Table 1 rows; C chosen on validation; ≈ 30-45 min each at one thread).
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors --C 10      # C of the 10k screen alone (rows superseded by the scan below)
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch002.safetensors --C 10
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors --C 3,10,30
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch002.safetensors --C 3,10,30
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors --C 10 --gamma-factor 0.5,1,2 --jobs 2
# N = 1 checkpoints under the same RBF protocol (C = 10, the value both N = 255 scans chose).
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N1-e2/model-epoch002.safetensors --C 10
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N1-e2/model-epoch002.safetensors --C 10
# Several seeds of the same recipe, each with its RBF SVM (C = 10), then voting together (one-vs-one
# decision values summed; each member's decisions are cached next to its checkpoint, so members fit
# in separate processes are combined without refitting).
C="--dataset mnist --arch paper-classify --keep 10 --device cpu"
for s in 2 3; do OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero $C --seed $s --epochs 2 --out runs/ens-mnist-seed$s; done
for r in scr-seed1 ens-mnist-seed2 ens-mnist-seed3; do OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/$r/model-epoch002.safetensors --C 10; done
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors runs/scr-seed1/model-epoch002.safetensors --C 10
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors runs/scr-seed1/model-epoch002.safetensors runs/ens-mnist-seed2/model-epoch002.safetensors runs/ens-mnist-seed3/model-epoch002.safetensors --C 10
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record pixels:mnist --C 3,10,30   # the raw-pixel peer under the same RBF protocol
# Unscaled features (no per-feature standardisation; one γ = 1/(D·var) for all), features and pixels.
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors --C 10 --scaling none
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record pixels:mnist --C 10,30 --scaling none
# Fashion-MNIST N = 255 learning curve (linear protocol): epoch 1, and the run continued to 5 epochs.
OMP_NUM_THREADS=1 python $B/experiments/learning_curve.py --record runs/t1-conv-fashion-N255-e2 --epochs 1
OMP_NUM_THREADS=1 rbm train --out runs/t1-conv-fashion-N255-e2 --resume --epochs 5 --device cpu
OMP_NUM_THREADS=1 python $B/experiments/learning_curve.py --record runs/t1-conv-fashion-N255-e2 --epochs 5
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record pixels:fashion-mnist --C 10 --scaling none   # the raw-pixel peer (plain SVC on pixels / 255)
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch005.safetensors --C 10
OMP_NUM_THREADS=1 rbm train --out runs/t1-conv-fashion-N255-e2 --resume --epochs 12 --device cpu
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch012.safetensors --C 10
OMP_NUM_THREADS=1 python $B/experiments/learning_curve.py --record runs/t1-conv-fashion-N255-e2 --epochs 12
# Fashion-MNIST N = 255 continued to 24 epochs (constant rate: resuming replays the same
# trajectory as training afresh with
# `OMP_NUM_THREADS=2 rbm train --recipe paper --visible-bias-init zero --dataset fashion-mnist --arch paper-classify --epochs 24 --keep 30
# --device cpu --out runs/t1-conv-fashion-N255-e2`, which is how the rows were measured), the RBF
# protocol every 4 epochs, chosen on validation, and the snapshots' SVMs voting together
# (cached members: no refit).
OMP_NUM_THREADS=2 rbm train --out runs/t1-conv-fashion-N255-e2 --resume --epochs 24 --device cpu
for e in 016 020 024; do OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch$e.safetensors --C 10; done
OMP_NUM_THREADS=1 python $B/experiments/rbf_full.py --record runs/t1-conv-fashion-N255-e2/model-epoch016.safetensors runs/t1-conv-fashion-N255-e2/model-epoch020.safetensors runs/t1-conv-fashion-N255-e2/model-epoch024.safetensors --C 10
# Generation with the generate recipe (the default): diversity of 64 samples and FID.
# Dense stacks were measured before centering existed; --no-center reproduces them.
# The generate-recipe runs from here on used that recipe's earlier defaults (lr 0.01, fan-in weight
# scale, uncentered data layer), which their flags restore; the conv stacks give --lr 0.03 themselves.
rbm train --lr 0.01 --weight-scale fan-in --no-center-data --out runs/default
rbm train --recipe paper --out runs/paper-default
rbm train --arch dense:500,dense:500 --no-center --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-mnist-dbn10
rbm train --arch dense:500,dense:500 --no-center --epochs 30 --keep 30 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-mnist-dbn30
python $B/experiments/generation.py --record runs/default/model.safetensors runs/paper-default/model.safetensors runs/gen-mnist-dbn10/model.safetensors runs/gen-mnist-dbn30/model-epoch021.safetensors
rbm train --dataset fashion-mnist --arch dense:500,dense:500 --no-center --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-fashion-dbn10
rbm train --arch dense:500,dense:1000 --no-center --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-mnist-dbn10-w1000
for r in gen-fashion-dbn10 gen-mnist-dbn10-w1000; do python $B/experiments/generation.py --record runs/$r/model.safetensors; done
python $B/experiments/fid_table.py --record runs/gen-mnist-dbn10/model.safetensors --n 2000
python $B/experiments/fid_table.py --record runs/gen-fashion-dbn10/model.safetensors --n 1000
python $B/experiments/fid_table.py --record runs/gen-mnist-dbn10-w1000/model.safetensors --n 2000
rbm train --arch dense:500,dense:500 --no-center --lower-negatives pcd --epochs 20 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/mnist-dbn255-pcd20
python $B/experiments/fid_table.py --record runs/mnist-dbn255-pcd20/model.safetensors --n 2000
# The N = 255 generative recipe: the default model trained 60 epochs.
OMP_NUM_THREADS=1 rbm train --epochs 60 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-small-60
OMP_NUM_THREADS=1 rbm train --arch dense:1000 --epochs 60 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-w1000-60
OMP_NUM_THREADS=1 rbm train --dataset fashion-mnist --epochs 60 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-fashion-small-60
for r in gen-small-60 gen-w1000-60 gen-fashion-small-60; do python $B/experiments/generation.py --record runs/$r/model.safetensors; done
python $B/experiments/fid_table.py --record runs/gen-small-60/model.safetensors --n 2000
python $B/experiments/fid_table.py --record runs/gen-fashion-small-60/model.safetensors --n 1000
python $B/experiments/fid_table.py --record runs/gen-small-60/model.safetensors --n 10000
python $B/experiments/fid_table.py --record runs/gen-fashion-small-60/model.safetensors --n 10000
# The conv generation stack (centered dense layers, the paper's rate, 20 epochs; 8-9 min each at one thread).
G="--arch conv:16,conv:32,dense:500,dense:200 --lr 0.03 --epochs 20"
OMP_NUM_THREADS=1 rbm train $G --out runs/conv-mnist
OMP_NUM_THREADS=1 rbm train $G --dataset fashion-mnist --out runs/conv-fashion
OMP_NUM_THREADS=1 rbm train $G --dataset colored-mnist --out runs/conv-colored
OMP_NUM_THREADS=1 rbm train --arch conv:16,conv:32,dense:500,dense:500 --lr 0.03 --epochs 20 --out runs/conv-mnist-500
OMP_NUM_THREADS=1 rbm train $G --no-center --out runs/conv-mnist-nocenter
python $B/experiments/generation.py --record runs/conv-mnist-500/model.safetensors runs/conv-mnist/model.safetensors
python $B/experiments/generation.py --record runs/conv-fashion/model.safetensors
python $B/experiments/fid_table.py --record runs/conv-mnist/model.safetensors --n 2000
python $B/experiments/fid_table.py --record runs/conv-fashion/model.safetensors --n 1000
python $B/experiments/fid_table.py --record runs/conv-mnist/model.safetensors --n 10000
python $B/experiments/fid_table.py --record runs/conv-fashion/model.safetensors --n 10000
python $B/experiments/fid_table.py --record runs/conv-colored/model.safetensors --n 2000
# Color (docs/color.md): the dataset's floor, the models, the figures.
python $B/experiments/fid_table.py --record --floor --dataset colored-mnist --n 2000
OMP_NUM_THREADS=1 rbm train --dataset colored-mnist --arch dense:500,dense:500 --epochs 20 --sample-steps 200 --no-center --lr 0.01 --weight-scale fan-in --no-center-data --out runs/colored-dense
OMP_NUM_THREADS=1 rbm train --dataset colored-mnist --epochs 60 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/colored-small-60
OMP_NUM_THREADS=1 rbm train --lr 0.01 --weight-scale fan-in --no-center-data --out runs/mnist-default
OMP_NUM_THREADS=1 rbm train --arch dense:500,dense:500 --epochs 20 --sample-steps 200 --no-center --lr 0.01 --weight-scale fan-in --no-center-data --out runs/mnist-dense2
for r in colored-dense colored-small-60 conv-colored mnist-default mnist-dense2; do OMP_NUM_THREADS=1 python $B/experiments/color_table.py --record runs/$r/model.safetensors; done
python $B/experiments/fid_table.py --record runs/colored-dense/model.safetensors --n 2000
python $B/experiments/fid_table.py --record runs/colored-small-60/model.safetensors --n 2000
# Likelihood of a short run: a 784–16 binary RBM, exact log Z, against independent pixels (seconds).
OMP_NUM_THREADS=1 python $B/experiments/likelihood_784_16.py --record --runs paper:3,paper:10
OMP_NUM_THREADS=1 python $B/experiments/likelihood_784_16.py --record --runs generate:3,generate:10,generate:30 --weight-scale fan-in --no-center-data --lr 0.01
# Centering, on and off: the dense stack centered (now the default) and the conv stack uncentered.
rbm train --arch dense:500,dense:500 --lr 0.01 --weight-scale fan-in --no-center-data --out runs/gen-mnist-dbn10-c
for r in gen-mnist-dbn10-c conv-mnist-nocenter; do python $B/experiments/generation.py --record runs/$r/model.safetensors; python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 2000; done
# Dense layers without the fan-in factor in their weight scale, the data layer centered.
python $B/experiments/likelihood_784_16.py --record --runs paper:3 --weight-scale unit --center-data
python $B/experiments/likelihood_784_16.py --record --runs generate:3,generate:10 --weight-scale unit --center-data --lr 0.01
python $B/experiments/likelihood_784_16.py --record --runs generate:3 --weight-scale unit --no-center-data --lr 0.01
python $B/experiments/likelihood_784_16.py --record --runs generate:3 --weight-scale fan-in --center-data --lr 0.01
OMP_NUM_THREADS=1 rbm train --weight-scale unit --center-data --lr 0.01 --out runs/unit-centered-10
OMP_NUM_THREADS=1 rbm train --weight-scale unit --lr 0.01 --no-center-data --out runs/unit-scale-10
OMP_NUM_THREADS=1 rbm train --center-data --lr 0.01 --weight-scale fan-in --out runs/center-data-10
OMP_NUM_THREADS=1 rbm train --weight-scale unit --center-data --epochs 60 --lr 0.01 --out runs/unit-centered-60
for r in unit-centered-10 unit-scale-10 center-data-10 unit-centered-60; do python $B/experiments/generation.py --record runs/$r/model.safetensors; done
python $B/experiments/fid_table.py --record runs/unit-centered-60/model.safetensors --n 2000
# ... and at lower rates.
for lr in 0.003 0.001; do
  python $B/experiments/likelihood_784_16.py --record --runs generate:3 --weight-scale unit --center-data --lr $lr
  OMP_NUM_THREADS=1 rbm train --weight-scale unit --center-data --lr $lr --out runs/unit-centered-10-lr$lr
  python $B/experiments/generation.py --record runs/unit-centered-10-lr$lr/model.safetensors
done
rbm train --weight-scale unit --center-data --lr 0.003 --epochs 60 --out runs/unit-centered-60-lr0.003
python $B/experiments/generation.py --record runs/unit-centered-60-lr0.003/model.safetensors
python $B/experiments/fid_table.py --record runs/unit-centered-60-lr0.003/model.safetensors --n 2000
# The generate recipe's present defaults (lr 0.005, --weight-scale first, --center-data).
python $B/experiments/likelihood_784_16.py --record --runs generate:3,generate:10,generate:30
for s in 1 2; do python $B/experiments/likelihood_784_16.py --record --runs generate:3 --seed $s; done
for s in 1 2; do python $B/experiments/likelihood_784_16.py --record --runs generate:3 --lr 0.004 --seed $s; done
rbm train --out runs/default-new && rbm sample runs/default-new/model.safetensors -n 64 -o docs/img/default-samples.png
for s in 1 2; do rbm train --seed $s --out runs/default-seed$s; done
rbm train --lr 0.004 --out runs/default-lr0.004
rbm train --lr 0.005 --epochs 60 --out runs/unit-centered-60-lr0.005
rbm train --dataset fashion-mnist --lr 0.003 --epochs 60 --out runs/fashion-60-lr0.003
rbm train --arch dense:500,dense:500 --out runs/dbn10-new
for r in default-new default-seed1 default-seed2 default-lr0.004 unit-centered-60-lr0.005 fashion-60-lr0.003 dbn10-new; do
  python $B/experiments/generation.py --record runs/$r/model.safetensors
done
for r in default-new default dbn10-new; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 2000; done
python $B/experiments/fid_table.py --record runs/fashion-60-lr0.003/model.safetensors --n 1000
rbm train --dataset fashion-mnist --out runs/fashion-default-new
rbm train --dataset fashion-mnist --lr 0.01 --weight-scale fan-in --no-center-data --out runs/fashion-default-old
rbm train --dataset fashion-mnist --lr 0.002 --epochs 60 --out runs/fashion-60-lr0.002
for r in fashion-default-new fashion-default-old fashion-60-lr0.002; do
  python $B/experiments/generation.py --record runs/$r/model.safetensors
  python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 1000
done
python $B/experiments/fid_table.py --record runs/unit-centered-60-lr0.005/model.safetensors --n 2000
python $B/experiments/fid_table.py --record runs/unit-centered-60-lr0.003/model.safetensors --n 10000
# The scikit-learn estimators in scikit-learn's digits example, and on MNIST (one thread).
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python $B/experiments/sklearn_pipeline.py --record --seeds 5  # its MNIST rows
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python $B/experiments/sklearn_pipeline.py --record --no-mnist  # 10 digits seeds
# Emoji (real color images; first: npm pack emoji-datasource-google@16.0.0 && mkdir -p emoji && tar xzf emoji-datasource-google-16.0.0.tgz -C emoji).
OMP_NUM_THREADS=1 rbm train --dataset emoji --data-dir emoji --size 32 --arch conv:16,conv:32,dense:500,dense:200 --lr 0.03 \
    --batch-size 16 --epochs 25 --sample-steps 300 --out runs/emoji-conv32
python $B/experiments/fid_table.py --record runs/emoji-conv32/model.safetensors --n 2000
python $B/experiments/fid_table.py --record --floor --dataset emoji --data-dir emoji --size 32 --n 2000
python $B/experiments/emoji_coverage.py --record runs/emoji-conv32/model.safetensors --n 1000
OMP_NUM_THREADS=1 python $B/experiments/color_table.py --record runs/emoji-conv32/model.safetensors
# Class balance with negatives from noise (results.md, "Class balance"), and the first epoch of a conv stack (color.md).
rbm train --out runs/default && rbm train --negatives noise --gibbs-steps 5 --out runs/noise5
for k in 10 20; do rbm train --negatives noise --gibbs-steps $k --out runs/noise$k; done
rbm train --dataset fashion-mnist --out runs/fashion-default
rbm train --dataset fashion-mnist --negatives noise --gibbs-steps 10 --out runs/fashion-noise10
rbm train --arch conv:16,conv:32,dense:500,dense:200 --lr 0.03 --epochs 20 --negatives noise --gibbs-steps 10 --out runs/conv-noise10
python $B/experiments/generation.py --record runs/noise10/model.safetensors --n 1000 --steps 1000
python $B/experiments/generation.py --record runs/default/model.safetensors runs/noise5/model.safetensors runs/noise10/model.safetensors \
    runs/noise20/model.safetensors runs/fashion-default/model.safetensors runs/fashion-noise10/model.safetensors --n 1000
python $B/experiments/generation.py --record runs/conv-noise10/model.safetensors runs/conv-mnist/model.safetensors --n 1000
for r in noise10 noise20 conv-noise10; do python $B/experiments/fid_table.py --record runs/$r/model.safetensors --n 2000; done
python $B/experiments/first_epoch.py --record --top-alone
rbm train --dataset colored-mnist --arch conv:16,conv:32,dense:500,dense:200 --lr 0.03 --epochs 20 --negatives noise --gibbs-steps 10 --out runs/conv-colored-noise10
python $B/experiments/color_table.py --record runs/conv-colored-noise10/model.safetensors
python $B/experiments/fid_table.py --record runs/conv-colored-noise10/model.safetensors --n 2000
