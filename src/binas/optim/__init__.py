"""Optimization pieces beyond `torch.optim`: retraining optimizers and schedules (`builders`), the two-step
1-bit schedule (`two_step`), and DCP-NAS's decoupled architecture optimization (`decoupled`)."""
