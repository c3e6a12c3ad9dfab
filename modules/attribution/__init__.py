"""Gradient attribution on point clouds (see modules/attribution/pointcloud.py); images in images.py.

Importing this package does not import captum: the methods load it at their first call (methods.captum_attr),
so a script that only needs the method names for its flags starts without it."""
from modules.attribution.pointcloud import (METHODS, AttributionResult, ClassScoreTarget, PartScoreTarget,
                                            PointScoreTarget, attribute, class_score_target, eval_mode,
                                            grad_cam, guided_backprop, guided_backprop_features, guided_relus,
                                            hirescam, integrated_gradients, part_score_target, point_score_target,
                                            resolve_layer)
