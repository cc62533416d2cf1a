from osteon.explain import randomization_sanity_check
def test_probe(square_model):
    predictor, tests = square_model
    for i in range(3):
        r = randomization_sanity_check(predictor, tests[i][0], target_class="1", seed=0)
        import numpy as np
        print("\n", [(s.block, s.spearman, float(np.ptp(s.map))) for s in r.steps], np.ptp(r.original), r.passed)
