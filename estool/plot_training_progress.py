"""Plot a training run from its log files and save a PNG.

    python plot_training_progress.py log/cartpole_swingup.cma.1.16
    python plot_training_progress.py log/cartpole_swingup.cma.1.16.hist.json -o progress.png
    python plot_training_progress.py log/carracing.cma.8.32 --x episodes \
        --reference ../shared/reference-2018/carracing/log/carracing.cma.16.64

Draws the population's mean, min and max reward per generation (<prefix>.hist.json) and
each evaluation of the mean params with the best so far (<prefix>.hist_best.json).
With --x episodes the x axis is the episodes spent so far, to compare runs of different
scale: each generation costs popsize x num_episode episodes, and so does each evaluation
of the mean (train.py runs it on popsize x num_episode fixed episodes), both read from the
log name <game>.<optimizer>.<num_episode>.<popsize>. --reference draws another run's
population mean and best evaluation on the same axes, dashed.

--after PREFIX draws a run that this one continued (train.py --init <its best.json>) before it:
this run's generations and episodes are counted on from that run's last generation, and a
dotted line marks where the search changed. Repeat it for a longer chain, earliest first.

--spread N prints, for each block of N generations, whether the search could rank its
solutions (from <prefix>.rewards.json, each solution's reward on each episode): the spread of
fitness between the solutions of a generation, the spread between episodes (tracks), and the
noise in one solution's fitness. With shared episodes (--common_seeds) that noise is the
solution x episode interaction, s / sqrt(num_episode), where s is the residual std after the
solution and episode means are taken out; otherwise it is the std between a solution's own
episodes / sqrt(num_episode). A ratio of fitness spread to noise near 1 means the ranking is
mostly noise.
plot_training_progress.ipynb is the notebook twin of this script.
"""

import argparse
import json
import os
import sys

import numpy as np

from estool.argtypes import output_file, positive_int

HIST_COLUMNS = ['gen', 'seconds', 'avg', 'min', 'max', 'std', 'rms_stdev', 'mean_steps', 'max_steps']


def log_prefix(path):
    """Accept a prefix or any of its log files: 'log/x.cma.16.64.hist.json' -> 'log/x.cma.16.64'."""
    for suffix in ('.hist_best.json', '.hist.json', '.best.json', '.log.json', '.json'):
        if path.endswith(suffix):
            return path[:-len(suffix)]
    return path


def numbers(row, columns):
    """row's entries at columns, each checked to be a number (IndexError, ValueError if not)."""
    values = [row[i] for i in columns]
    [float(v) for v in values]
    return values


def read_rows(path, parse, expected):
    """Parse each row of a JSON log; ValueError naming the file if it is not such a log."""
    try:
        with open(path) as f:
            rows = [parse(row) for row in json.load(f)]
    except (ValueError, TypeError, IndexError, KeyError) as e:
        raise ValueError('%s: not a train.py log (%s: %s); expected %s' % (path, type(e).__name__, e, expected))
    if not rows:
        raise ValueError('%s: no rows yet; expected %s' % (path, expected))
    return rows


def load_history(prefix):
    """-> (hist rows as dicts, eval rows as dicts); eval rows are empty before the first evaluation."""
    hist_path = prefix + '.hist.json'
    if not os.path.exists(hist_path):
        raise FileNotFoundError('%s: no such file (train.py writes it each generation)' % hist_path)
    hist = read_rows(hist_path, lambda row: dict(zip(HIST_COLUMNS, numbers(row, range(len(HIST_COLUMNS))))),
                     'rows [gen, seconds, avg, min, max, std, rms_stdev, mean_steps, max_steps]')
    evals = []
    if os.path.exists(prefix + '.hist_best.json'):
        evals = read_rows(prefix + '.hist_best.json',
                          lambda r: dict(zip(('gen', 'seconds', 'curr', 'best'), numbers(r, (0, 1, 5, 9)))),
                          'rows [gen, seconds, "improvement", x, "curr", y, "prev", z, "best", w]')
    return hist, evals


def run_scale(prefix):
    """(num_episode, popsize) from a log name <game>.<optimizer>.<num_episode>.<popsize>."""
    parts = os.path.basename(prefix).split('.')
    try:
        num_episode, popsize = int(parts[-2]), int(parts[-1])
    except (IndexError, ValueError):
        raise ValueError('%s: the name does not end in .<num_episode>.<popsize>, so the episodes spent are '
                         'unknown (use --x generation)' % prefix)
    return num_episode, popsize


def episodes_spent(prefix, hist, evals):
    """Episodes spent by the end of each generation and at each evaluation (two lists)."""
    num_episode, popsize = run_scale(prefix)
    per = num_episode * popsize
    eval_gens = [e['gen'] for e in evals]

    def spent(gen, with_eval):
        done = sum(1 for g in eval_gens if g < gen or (with_eval and g == gen))
        return per * (gen + done)
    return [spent(h['gen'], False) for h in hist], [spent(e['gen'], True) for e in evals]


def generation_spread(rewards, common):
    """rewards (popsize, num_episode) of one generation -> (fitness std, episode std, fitness noise)."""
    r = np.asarray(rewards, dtype=np.float64)
    e = r.shape[1]
    fitness = r.mean(axis=1)
    if common and e > 1:
        episode_std = float(r.mean(axis=0).std())
        residual = r - fitness[:, None] - r.mean(axis=0)[None, :] + r.mean()
        s = np.sqrt((residual ** 2).sum() / ((r.shape[0] - 1) * (e - 1)))
    else:
        episode_std = float('nan')
        s = np.sqrt(r.var(axis=1, ddof=1).mean()) if e > 1 else float('nan')
    return float(fitness.std()), episode_std, float(s / np.sqrt(e))


def spread_table(prefix, every=10):
    """Lines of the --spread table; ValueError if <prefix>.rewards.json is missing or malformed."""
    path = prefix + '.rewards.json'
    if not os.path.exists(path):
        raise ValueError('%s: no such file (train.py writes it each generation since per-episode rewards '
                         'are logged)' % path)
    rows = read_rows(path, lambda row: (int(row[0]), np.asarray(row[1], dtype=np.float64)),
                     'rows [gen, [[reward per episode] per solution]]')
    common = False   # train.py's flags say whether the solutions of a generation shared their episodes
    args_path = prefix + '.args.json'
    if os.path.exists(args_path):
        with open(args_path) as f:
            common = bool(json.load(f).get('common_seeds', False))
    lines = ['generations  fitness std  %s  noise in a fitness  ratio' % (
        'track std' if common else '(no shared tracks)')]
    for start in range(0, len(rows), every):
        block = rows[start:start + every]
        stats = np.array([generation_spread(r, common) for _, r in block])
        fit, ep, noise = np.nanmean(stats, axis=0)
        lines.append('%5d-%-5d  %11.2f  %9s  %18.2f  %5.2f' % (
            block[0][0], block[-1][0], fit, '%.2f' % ep if common else '-', noise, fit / noise if noise else np.nan))
    return lines


def chained_history(prefixes, x):
    """Runs that continued one another, earliest first -> (hist, evals, hist x, eval x, joints).

    Each run's x is counted on from the end of the run before it (its last generation, or the
    episodes spent by then, its evaluation at that generation included); joints are those x."""
    hist, evals, hist_x, eval_x, joints = [], [], [], [], []
    offset = 0
    for i, prefix in enumerate(prefixes):
        h, e = load_history(prefix)
        if x == 'episodes':
            hx, ex = episodes_spent(prefix, h, e)
        else:
            hx, ex = [r['gen'] for r in h], [r['gen'] for r in e]
        end = max(hx[-1], ex[-1]) if ex else hx[-1]   # an evaluation after the last generation ends the run
        if i:
            joints.append(offset)
        hist += h
        evals += [dict(r, run=i) for r in e]
        hist_x += [offset + v for v in hx]
        eval_x += [offset + v for v in ex]
        offset += end
    return hist, evals, hist_x, eval_x, joints


def plot_progress(prefix, ax=None, title=None, x='generation', reference=None, reference_label=None, after=()):
    """Draw the curves of one run on ax (a new figure if None); returns the figure.

    x: 'generation' or 'episodes' (episodes spent, see the module docstring). reference: the log
    prefix of another run, drawn dashed on the same axes. after: log prefixes of the runs this
    one continued, earliest first, drawn before it (see --after)."""
    import matplotlib.pyplot as plt

    hist, evals, gens, eval_x, joints = chained_history(list(after) + [prefix], x)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 5))
    else:
        fig = ax.figure
    if reference:
        ref_hist, ref_evals, ref_x, ref_eval_x, _ = chained_history([reference], x)
        name = reference_label or os.path.basename(reference)
        ax.plot(ref_x, [h['avg'] for h in ref_hist], '--', color='tab:gray', label='%s: population mean' % name)
        if ref_evals:
            ax.step(ref_eval_x, [e['best'] for e in ref_evals], '--', where='post', color='black',
                    label='%s: best evaluation' % name)
    ax.fill_between(gens, [h['min'] for h in hist], [h['max'] for h in hist], color='tab:blue',
                    alpha=0.2, label='population min-max')
    ax.plot(gens, [h['avg'] for h in hist], color='tab:blue', label='population mean')
    last = max(gens[-1], eval_x[-1]) if eval_x else gens[-1]   # an evaluation after the last generation ends it
    if evals:
        ax.plot(eval_x, [e['curr'] for e in evals], 'o', color='tab:orange',
                label='evaluation of mean params')
        ends = joints + [last]   # where each run ends
        for run in sorted({e['run'] for e in evals}):   # each run keeps its own best (its own tracks)
            xs = [v for v, e in zip(eval_x, evals) if e['run'] == run]
            best = [e['best'] for e in evals if e['run'] == run]
            end = ends[run]
            if end > xs[-1]:   # the best stands until the run goes on to a better one or ends
                xs, best = xs + [end], best + [best[-1]]
            ax.step(xs, best, where='post', color='tab:red',
                    label=None if run != evals[0]['run'] else 'best evaluation')
    for i, joint in enumerate(joints):
        ax.axvline(joint, linestyle=':', color='tab:green',
                   label='continued as %s' % os.path.basename(prefix) if i == len(joints) - 1 else None)
    if reference and x == 'episodes':
        ax.set_xlim(0, last * 1.05)   # the reference ran far longer
    ax.set_xlabel('episodes spent' if x == 'episodes' else 'generation')
    ax.set_ylabel('reward')
    ax.set_title(title or os.path.basename(prefix))
    ax.grid(alpha=0.3)
    # below the axes: inside, it hides the rising end of the curves
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize='small')
    fig.tight_layout()
    return fig


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('log', help='log prefix (log/<game>.<opt>.<episodes>.<popsize>) or one of its files')
    p.add_argument('-o', '--output', type=output_file,
                   help='PNG to write; another extension (.pdf, .svg, ...) picks that format (default: <prefix>.png)')
    p.add_argument('--x', choices=('generation', 'episodes'), default='generation',
                   help='x axis: generations, or episodes spent (default: %(default)s)')
    p.add_argument('--reference', help='log prefix of another run to draw dashed on the same axes')
    p.add_argument('--reference_label', help='its name in the legend (default: the prefix\'s file name)')
    p.add_argument('--title', help='figure title (default: the prefix\'s file name)')
    p.add_argument('--after', action='append', default=[], metavar='PREFIX',
                   help='log prefix of a run this one continued (train.py --init), drawn before it; '
                        'repeat for a chain, earliest first (default: none)')
    p.add_argument('--spread', type=positive_int, default=0, metavar='N',
                   help='also print the spread table (see above) in blocks of N generations (default: off)')
    args = p.parse_args()
    prefix = log_prefix(args.log)
    import matplotlib
    matplotlib.use('Agg')  # a file, no window: works over ssh and in CI
    try:
        fig = plot_progress(prefix, title=args.title, x=args.x,
                            reference=log_prefix(args.reference) if args.reference else None,
                            reference_label=args.reference_label, after=[log_prefix(a) for a in args.after])
    except (FileNotFoundError, ValueError, IndexError, KeyError) as e:
        sys.exit('plot_training_progress.py: %s' % e)
    out = args.output or prefix + '.png'
    # a name without an extension is written as a PNG under that very name (matplotlib would
    # add '.png' to it, and the line below would name a file that is not there)
    try:
        fig.savefig(out, dpi=100, format=None if os.path.splitext(out)[1] else 'png')
    except (ValueError, OSError) as e:   # an extension matplotlib cannot write, a full disk
        sys.exit('plot_training_progress.py: cannot write %s (%s)' % (out, e))
    hist, evals = load_history(prefix)
    print('wrote %s (%d generations, %d evaluations, best eval %s)' % (
        out, len(hist), len(evals), evals[-1]['best'] if evals else 'none'))
    if args.spread:
        try:
            print('\n'.join(spread_table(prefix, args.spread)))
        except ValueError as e:
            sys.exit('plot_training_progress.py: %s' % e)


if __name__ == '__main__':
    try:
        main()
    except BrokenPipeError:
        # the reader of a pipe (`--spread 1 | head`) left early; the PNG is already written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
