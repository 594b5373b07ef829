from httpx import AsyncClient


async def test_a_created_task_can_be_read_back(client: AsyncClient) -> None:
    created = await client.post("/tasks", json={"title": "Write tests"})
    assert created.status_code == 201
    fetched = await client.get(created.headers["location"])
    assert fetched.json() == created.json()
