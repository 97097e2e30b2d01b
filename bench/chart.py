"""ratios.png: each configuration's median as a ratio to its group's reference (log scale)."""

import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def draw(data, path):
    labels, ratios, colors = [], [], []
    for group in data['groups']:
        for config in group['configs']:
            if config['reference'] or config['ratio_to_reference'] is None:
                continue
            ref = [c for c in group['configs'] if c['reference']][0]['name']
            labels.append('%s: %s vs %s' % (group['key'], config['name'], ref))
            ratios.append(config['ratio_to_reference'])
            colors.append('tab:green' if config['ratio_to_reference'] <= 1 else 'tab:orange')
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.6))
    ypos = range(len(labels))[::-1]
    ax.barh(list(ypos), ratios, color=colors)
    ax.set_yticks(list(ypos))
    ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(1.0, color='black', linewidth=0.8)
    ax.set_xscale('log')
    for y, value in zip(ypos, ratios):
        ax.text(value, y, ' %.2fx' % value, va='center', fontsize=8)
    ax.set_xlabel('median wall time / reference median (log scale; < 1 is faster than the reference)')
    meta = data['meta']
    ax.set_title('pgops.backup bench %s, %s, %s' % (meta['date'], meta['size_label'], meta['machine_short']),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)
