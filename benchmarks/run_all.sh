#!/usr/bin/env bash
# Every figure in docs/results.md, one command each, in the order they were run.
set -x
B=benchmarks
python $B/table1.py --dataset mnist --units 255 --arch small --epochs 10
python $B/table1.py --dataset mnist --units 1 --arch small --epochs 10
python $B/table1.py --dataset fashion-mnist --units 255 --arch small --epochs 10
python $B/table1.py --dataset fashion-mnist --units 1 --arch small --epochs 10
python $B/loglik.py --negatives meanfield --epochs 10
python $B/loglik.py --negatives pcd --epochs 10
python $B/peers.py --dataset mnist
python $B/peers.py --dataset fashion-mnist
# Ablations: MNIST, 20k training images for the RBM and the SVM, 5 epochs, one change a row.
A="--dataset mnist --epochs 5 --limit 20000 --svm-limit-train 20000 --table ablations"
python $B/table1.py $A --arch small --tag base
python $B/table1.py $A --arch small --units 1 --tag N=1
python $B/table1.py $A --arch small --lr 0.01 --tag lr=0.01
python $B/table1.py $A --arch small --lr 0.003 --tag lr=0.003
python $B/table1.py $A --arch small --k 0.05 --tag k=0.05
python $B/table1.py $A --arch small --activation relu --tag relu
python $B/table1.py $A --arch small --negatives cd --tag cd-1
python $B/table1.py $A --arch small --negatives pcd --tag pcd-1
python $B/table1.py $A --arch small-dbn --mode joint --tag dbn-joint
python $B/table1.py $A --arch small-dbn --mode detached --tag dbn-detached
python $B/table1.py $A --arch small-dbn --mode greedy --tag dbn-greedy
