"""BLE devices: profiles (what to subscribe to), sessions (bleak + reconnects), connection slots."""
