"""Citizens' ratings and what follows them: statistics, alerts, follow-up cases, the duty
roster of officers at desks, and kiosk screenshots."""
