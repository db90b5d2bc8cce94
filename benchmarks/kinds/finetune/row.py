"""Summarise fakescan eval JSON pairs: python row.py TEST.json:VALID.json ... (one line each)."""
import json, sys
for arg in sys.argv[1:]:
    f, _, fv = arg.partition(':')
    d = json.load(open(f)); k = d['by_kind']
    od = next(iter(d['ood'].values())) if d.get('ood') else {}
    vk = json.load(open(fv))['by_kind'] if fv else None
    vm = (sum(vk[x]['roc_auc'] for x in ('gan', 'diffusion', 'faceswap')) / 3) if vk else float('nan')
    print(f"{f.split('/')[-1]:16s} thr {d['threshold']:.3f} | SG2 {k['gan']['fakes_detected']*100:.1f}% ({k['gan']['roc_auc']:.3f}) "
          f"diff {k['diffusion']['fakes_detected']*100:.0f}% ({k['diffusion']['roc_auc']:.3f}) swaps {k['faceswap']['fakes_detected']*100:.1f}% ({k['faceswap']['roc_auc']:.3f}) "
          f"reals {k['real']['real_called_fake']*100:.1f}/{k['real']['worst_source_real_called_fake']*100:.1f} | "
          f"ood {od.get('recall', float('nan'))*100:.0f}/{od.get('real_called_fake', float('nan'))*100:.0f}/{od.get('roc_auc', float('nan')):.3f} | "
          f"valid meanAUC {vm:.3f} swaps {vk['faceswap']['roc_auc'] if vk else float('nan'):.3f} gan {vk['gan']['roc_auc'] if vk else float('nan'):.3f} worst real {vk['real']['worst_source_real_called_fake']*100 if vk else float('nan'):.1f}")
