"""Exchange orders: the exchange's order id and filled quantity, the trade id of each fill.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("exchange_order_id", sa.String(length=64), nullable=True))
    op.add_column(
        "orders",
        sa.Column("filled_quantity", sa.Float(precision=53), server_default="0", nullable=False),
    )
    op.create_index(op.f("ix_orders_exchange_order_id"), "orders", ["exchange_order_id"])
    op.add_column("fills", sa.Column("exchange_trade_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_fills_exchange_trade_id"), "fills", ["exchange_trade_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_fills_exchange_trade_id"), table_name="fills")
    op.execute("ALTER TABLE fills DROP COLUMN exchange_trade_id")
    op.drop_index(op.f("ix_orders_exchange_order_id"), table_name="orders")
    op.execute("ALTER TABLE orders DROP COLUMN filled_quantity")
    op.execute("ALTER TABLE orders DROP COLUMN exchange_order_id")
